"""Which transformers class builds a config that the auto classes the CLI tries first
(``AutoModelForCausalLM``, ``AutoModel``) do not take: the other auto mappings, then the
model type's own module (sub-config types such as ``clip_text_model`` have a class there,
``CLIPTextModel``, but no auto entry)."""

from __future__ import annotations

import importlib
from typing import Any

# Mappings tried first, in this order; then every other MODEL_*_MAPPING_NAMES, sorted.
_FIRST = (
    "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES",
    "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
    "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES",
    "MODEL_FOR_CTC_MAPPING_NAMES",
    "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES",
    "MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES",
    "MODEL_FOR_TEXT_TO_SPECTROGRAM_MAPPING_NAMES",
)


def _mapped_names(model_type: str) -> list[str]:
    try:
        from transformers.models.auto import modeling_auto
    except ImportError:
        return []
    tables = [name for name in dir(modeling_auto) if name.startswith("MODEL") and name.endswith("_MAPPING_NAMES")]
    ordered = [name for name in _FIRST if name in tables] + sorted(name for name in tables if name not in _FIRST)
    found: list[str] = []
    for table in ordered:
        entry = getattr(modeling_auto, table).get(model_type)
        for name in entry if isinstance(entry, (list, tuple)) else [entry]:
            if isinstance(name, str) and name not in found:
                found.append(name)
    return found


def _module_classes(transformers: Any, config: Any) -> list[str]:
    """Model classes of the model type's module whose ``config_class`` is the config's class."""
    try:
        from transformers.models.auto.configuration_auto import model_type_to_module_name

        module = importlib.import_module(f"transformers.models.{model_type_to_module_name(config.model_type)}")
    except Exception:  # noqa: BLE001 - no such module: nothing to offer
        return []
    base = getattr(transformers, "PreTrainedModel", None)
    names = []
    for name in sorted(getattr(module, "__all__", None) or dir(module)):
        if name.startswith("PreTrained") or not name[:1].isupper():
            continue
        try:
            cls = getattr(module, name)
        except Exception:  # noqa: BLE001 - a class needing a missing extra
            continue
        if isinstance(cls, type) and base is not None and issubclass(cls, base) and getattr(cls, "config_class", None) is type(config):
            names.append(name)
    own = type(config).__name__.replace("Config", "Model")  # CLIPTextConfig -> CLIPTextModel first
    return sorted(names, key=lambda n: (n != own, not n.endswith("Model"), n))


def candidate_classes(transformers: Any, config: Any) -> list[Any]:
    """Classes that may build ``config``, most fitting first."""
    names = _mapped_names(str(getattr(config, "model_type", ""))) + _module_classes(transformers, config)
    classes = []
    for name in names:
        cls = getattr(transformers, name, None)
        if isinstance(cls, type) and cls not in classes:
            classes.append(cls)
    return classes
