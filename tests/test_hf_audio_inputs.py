"""The default inputs ``hf:TYPE`` derives for audio models (cli/hf_audio.py), each rule on a
tiny model of the class it covers, with a config-like object: no transformers model is
built. Each shape is derived by hand in a comment."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from torchtally.cli.hf_inputs import default_inputs
from torchtally.cli.inputs import InputShape


class _Config(SimpleNamespace):
    """A config-like object; ``to_dict`` marks it as one (sub-configs are found by it)."""

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


# --- vocoders: a spectrogram of the mel channels the first convolution reads ---------------


class _HifiGan(nn.Module):
    """SpeechT5's HiFi-GAN: a spectrogram documented (in prose) with its frames second."""

    main_input_name = "spectrogram"

    def __init__(self) -> None:
        super().__init__()
        self.conv_pre = nn.Conv1d(20, 8, 7, padding=3)
        self.up = nn.ConvTranspose1d(8, 1, 8, stride=4, padding=2)

    def forward(self, spectrogram: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        r"""
        spectrogram (`torch.Tensor`):
            Tensor containing the log-mel spectrograms. Can be batched and of shape `(batch_size, sequence_length,
            config.model_in_dim)`, or un-batched and of shape `(sequence_length, config.model_in_dim)`.
        """
        return self.up(self.conv_pre(spectrogram.transpose(2, 1)))


class _BigVGan(_HifiGan):
    """Qwen2.5-Omni's BigVGAN: an undocumented ``mel_spectrogram`` the convolution reads as it is."""

    main_input_name = "input_ids"  # what the class keeps; the forward takes none

    def forward(self, mel_spectrogram: torch.Tensor, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        return self.up(self.conv_pre(mel_spectrogram))


def test_a_vocoder_spectrogram_documented_frames_second() -> None:
    config = _Config(model_in_dim=20, sampling_rate=16_000, upsample_rates=[4, 4, 4, 4])
    # mels: conv_pre's 20 in_channels; frames: a second, 16000 samples, over the hop
    # 4 x 4 x 4 x 4 = 256 samples a frame: 62; the docstring puts the frames second
    assert default_inputs(_HifiGan(), config) == [InputShape(None, (1, 62, 20))]


def test_a_vocoder_spectrogram_undocumented_channels_first() -> None:
    config = _Config(mel_dim=20, upsample_rates=[5, 3, 2, 2, 2, 2])
    # mels 20 (conv_pre) as the channels the convolution reads; no rate: 16000 samples over
    # the hop 5 x 3 x 2 x 2 x 2 x 2 = 240: 66 frames
    assert default_inputs(_BigVGan(), config) == [InputShape(None, (1, 20, 66))]


# --- sub-models fed hidden_states: the first layer with weights tells what they are ---------


class _LinearTower(nn.Module):
    """Granite Speech's CTC encoder: ``hidden_states`` into an input linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.input_linear = nn.Linear(24, 8)

    def forward(self, hidden_states: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self.input_linear(hidden_states)


def test_hidden_states_a_linear_layer_reads() -> None:
    # (batch, frames, in_features): 1, MEL_FRAMES = 3000, the linear layer's 24
    assert default_inputs(_LinearTower(), _Config(input_dim=24)) == [InputShape(None, (1, 3000, 24))]


class _WaveEncoder(nn.Module):
    """VibeVoice's acoustic tokenizer encoder: a waveform of one channel into a 1-D convolution."""

    main_input_name = "input_values"

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, 4, 7)

    def forward(self, hidden_states: torch.Tensor, padding_cache: Any = None, **kwargs: Any) -> torch.Tensor:
        return self.conv(hidden_states)


def test_hidden_states_a_waveform_a_one_channel_convolution_reads() -> None:
    config = _Config(channels=1, downsampling_ratios=[2, 4, 5])
    # (batch, the convolution's 1 channel, a second of samples at the default 16 kHz)
    assert default_inputs(_WaveEncoder(), config) == [InputShape(None, (1, 1, 16_000))]


def test_hidden_states_latents_a_codec_decoder_reads() -> None:
    config = _Config(hidden_size=6, downsampling_ratios=[2, 4, 5, 8])
    # (batch, the convolution's 6 channels, a second of frames: 16000 samples / (2*4*5*8 = 320) = 50)
    assert default_inputs(_WaveEncoder(channels=6), config) == [InputShape(None, (1, 6, 50))]


class _ConvSubsampledTower(nn.Module):
    """Phi-4's audio encoder: frames of features a 2-D convolution of one channel reads, and a
    mask without a default."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor | None, **kwargs: Any) -> torch.Tensor:
        return self.conv(hidden_states.unsqueeze(1))


def test_hidden_states_features_a_2d_convolution_reads_and_its_mask() -> None:
    found = default_inputs(_ConvSubsampledTower(), _Config(input_size=16))
    # (batch, MEL_FRAMES = 3000, the config's input_size 16); the mask: every one of the 3000
    # frames valid (undocumented: the frames are the dimension that is not the 16 features)
    assert found == [
        InputShape("hidden_states", (1, 3000, 16)),
        InputShape("mask", (1, 3000), torch.long, values=((1,) * 3000,)),
    ]


# --- masks and frame layouts ----------------------------------------------------------------


class _StackedEncoder(nn.Module):
    """FunASR's encoder: stacked mel frames straight into attention, and a required mask."""

    main_input_name = "input_features"

    def __init__(self) -> None:
        super().__init__()
        self.q_proj = nn.Linear(20, 8)

    def forward(self, input_features: torch.Tensor, input_features_mask: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        r"""
        input_features (`torch.FloatTensor` of shape `(batch_size, sequence_length, feature_dim)`):
            the features.
        input_features_mask (`torch.LongTensor` of shape `(batch_size, padded_feature_length)`):
            1 for valid mel frames and 0 for padding.
        """
        return self.q_proj(input_features) * input_features_mask[..., None]


def test_stacked_frames_and_the_required_mask() -> None:
    found = default_inputs(_StackedEncoder(), _Config(num_mel_bins=4, num_stacked_frames=5))
    # 5 frames of 4 mel bins stacked: 20 features a frame; 3000 mel frames make 3000 * 4 // 20
    # = 600 stacked ones; the mask: those 600 frames (the docstring puts them second), all valid
    assert found == [
        InputShape("input_features", (1, 600, 20)),
        InputShape("input_features_mask", (1, 600), torch.long, values=((1,) * 600,)),
    ]


class _OptionalMaskEncoder(nn.Module):
    """Audio Flamingo 3's encoder: its mask defaults to None, but the forward sums it."""

    main_input_name = "input_features"

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(8, 4, 3, padding=1)

    def forward(self, input_features: torch.Tensor, input_features_mask: torch.Tensor | None = None) -> torch.Tensor:
        r"""
        Args:
            input_features (`torch.Tensor` of shape `(batch_size, feature_size, sequence_length)`):
                Log-Mel features.
        """
        assert input_features_mask is not None
        return self.conv1(input_features) * input_features_mask.sum()


def test_the_mask_a_feature_extractor_returns_beside_the_features() -> None:
    found = default_inputs(_OptionalMaskEncoder(), _Config(num_mel_bins=8, max_source_positions=50))
    # Whisper-like: (batch, 8 mels, 2 x 50 positions = 100 frames); the mask over the frames,
    # last as documented, all valid
    assert found == [
        InputShape("input_features", (1, 8, 100)),
        InputShape("input_features_mask", (1, 100), torch.long, values=((1,) * 100,)),
    ]


class _MelAndBoolMask(nn.Module):
    """Gemma 3n's audio encoder: ``audio_mel`` frames and a boolean mask of undocumented sense."""

    main_input_name = "audio_mel"

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(12, 4)

    def forward(self, audio_mel: torch.Tensor, audio_mel_mask: torch.BoolTensor, **kwargs: Any) -> torch.Tensor:
        return self.proj(audio_mel).masked_fill(audio_mel_mask[..., None], 0.0)


def test_mel_frames_named_for_them_and_a_boolean_mask() -> None:
    found = default_inputs(_MelAndBoolMask(), _Config(input_feat_size=12))
    # (batch, 3000 frames, the config's 12 features); the boolean mask over the frames, no values
    assert found == [InputShape("audio_mel", (1, 3000, 12)), InputShape("audio_mel_mask", (1, 3000), torch.bool)]


class _SwinAudio(nn.Module):
    """CLAP's audio tower: mel frames folded into a square spectrogram image for a Swin."""

    main_input_name = "input_features"

    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(1, 4, 4, stride=4)

    def forward(self, input_features: torch.Tensor | None = None, is_longer: torch.Tensor | None = None) -> torch.Tensor:
        r"""
        input_features (`torch.FloatTensor` of shape `(batch_size, sequence_length, feature_dim)`):
            the features.
        """
        assert input_features is not None
        return self.patch_embed(input_features)


def test_mel_frames_as_a_square_spectrogram_image() -> None:
    found = default_inputs(_SwinAudio(), _Config(num_mel_bins=8, spec_size=32))
    # a square of 32 x 32 = 1024 values, 8 mel bins a frame: 128 frames; (batch, the patch
    # embedding's 1 channel, 128 frames, 8 mels)
    assert found == [InputShape(None, (1, 1, 128, 8))]


class _PatchedWave(nn.Module):
    """Muse Spark's audio tower: a waveform that must be whole tokens of samples."""

    main_input_name = "input_values"

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(1, 4)

    def forward(self, input_values: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        assert input_values.shape[1] % 1920 == 0
        return self.proj(input_values.unsqueeze(-1))


def test_a_waveform_padded_to_whole_tokens() -> None:
    # a second at 16 kHz, 16000 samples, rounded up to whole tokens of 1920: 9 x 1920 = 17280
    assert default_inputs(_PatchedWave(), _Config(samples_per_token=1920)) == [InputShape(None, (1, 17_280))]


# --- feature widths the usual fields do not name ----------------------------------------------


class _SubConfigTower(nn.Module):
    """Nemotron 3.5 Transcribe's audio model: its mel bins named by a sub-config of its own name."""

    main_input_name = "input_features"

    def __init__(self) -> None:
        super().__init__()
        self.projection = nn.Linear(64, 4)

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        return self.projection(input_features.reshape(1, -1, 64))


def test_features_a_sub_config_of_another_name_gives() -> None:
    config = _Config(asr_config=_Config(num_mel_bins=16, subsampling_factor=4))
    # conformer-like (batch, 3000 frames, the asr_config's 16 mel bins); the projection is not
    # named for the input, so no stacking
    assert default_inputs(_SubConfigTower(), config) == [InputShape(None, (1, 3000, 16))]


class _Subsampling(nn.Module):
    """Gemma 4's audio tower: two stride-2 convolutions over (frames, features) as a one-channel
    image, then a linear layer over channels x the features left; no field names the width."""

    main_input_name = "input_features"

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(1, 6, 3, stride=2, padding=1)
        self.norm0 = nn.LayerNorm(6)
        self.conv1 = nn.Conv2d(6, 3, 3, stride=2, padding=1)
        self.input_proj_linear = nn.Linear(30, 8)

    def forward(self, input_features: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.conv1(self.conv0(input_features.unsqueeze(1)))
        return self.input_proj_linear(hidden.permute(0, 2, 3, 1).flatten(2))


def test_the_feature_width_a_convolutional_subsampling_implies() -> None:
    # the linear layer reads 30 = 3 channels x 10 features left; each convolution halves the
    # features: 10 x 2 x 2 = 40 features a frame; (batch, 3000 frames, 40)
    assert default_inputs(_Subsampling(), _Config(hidden_size=8)) == [InputShape(None, (1, 3000, 40))]


class _BareSpeechSeq2Seq(nn.Module):
    """SpeechT5's bare model, built without its pre-nets: "input values" that a norm reads
    first, no convolution anywhere, and a decoder that reads values of the same kind."""

    main_input_name = "input_values"

    def __init__(self) -> None:
        super().__init__()
        self.config = _Config(is_encoder_decoder=True)
        self.layer_norm = nn.LayerNorm(12)
        self.decoder = nn.Linear(12, 12)

    def forward(
        self, input_values: torch.Tensor | None = None, decoder_input_values: torch.Tensor | None = None
    ) -> torch.Tensor:
        r"""
        input_values (`torch.Tensor` of shape `(batch_size, sequence_length)`):
            what the (absent) speech pre-net would read.
        """
        assert input_values is not None and decoder_input_values is not None
        return self.decoder(self.layer_norm(input_values)) + decoder_input_values


def test_values_a_bare_encoder_decoder_reads_as_frames() -> None:
    found = default_inputs(_BareSpeechSeq2Seq(), _Config(is_encoder_decoder=True, hidden_size=12))
    # no convolution and a first norm of width 12: (batch, MEL_FRAMES = 3000, 12), not a
    # waveform; the decoder's values the same
    assert found == [InputShape("input_values", (1, 3000, 12)), InputShape("decoder_input_values", (1, 3000, 12))]


class _TextAndMels(nn.Module):
    """CLVP: token ids and mel features, their width named only by a decoder sub-config
    (``feature_size``), read as channels by the first 1-D convolution."""

    main_input_name = "input_ids"

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.mel_conv = nn.Conv1d(10, 8, 1)

    def forward(self, input_ids: torch.Tensor | None = None, input_features: torch.Tensor | None = None) -> torch.Tensor:
        assert input_ids is not None and input_features is not None
        return self.embed(input_ids).sum() + self.mel_conv(input_features).sum()


def test_features_of_a_sub_config_read_as_channels() -> None:
    config = _Config(text_config=_Config(vocab_size=50), decoder_config=_Config(feature_size=10))
    found = default_inputs(_TextAndMels(), config)
    # ids (1, 128) below the text's 50; the features: 584 frames of the decoder config's 10
    # (the filterbank default), turned to (1, 10, 584) as the first Conv1d reads 10 channels
    assert found == [InputShape("input_ids", (1, 128), torch.long, vocab=50), InputShape("input_features", (1, 10, 584))]


class _UnpackingEncoder(nn.Module):
    """Qwen3-ASR's encoder: documents its features frames second, but unpacks their shape as
    ``batch_size, num_mel_bins, padded_feature_length``, and takes a mask it sums."""

    main_input_name = "input_features"

    def __init__(self) -> None:
        super().__init__()
        self.conv2d1 = nn.Conv2d(1, 4, 3, stride=2, padding=1)

    def forward(self, input_features: torch.Tensor, input_features_mask: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        r"""
        input_features (`torch.FloatTensor` of shape `(batch_size, sequence_length, feature_dim)`):
            the features.
        """
        batch_size, num_mel_bins, padded_feature_length = input_features.shape
        chunks = input_features.view(batch_size, 1, num_mel_bins, padded_feature_length)
        return self.conv2d1(chunks) * input_features_mask.sum()


def test_features_laid_out_as_the_forward_unpacks_them() -> None:
    found = default_inputs(_UnpackingEncoder(), _Config(num_mel_bins=16))
    # conformer-like by its config, (1, 3000, 16); the forward unpacks (batch_size,
    # num_mel_bins = 16, padded_feature_length): (1, 16, 3000), and the mask over the 3000
    # frames last, all valid
    assert found == [
        InputShape("input_features", (1, 16, 3000)),
        InputShape("input_features_mask", (1, 3000), torch.long, values=((1,) * 3000,)),
    ]


class _MelTokens(nn.Module):
    """Inkling's audio model: quantised mel frames as ids, one table offset per mel bin."""

    main_input_name = "input_ids"  # what the class keeps; the forward takes audio_input_ids

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(4 * 16, 8)
        self.register_buffer("offsets", torch.arange(4) * 16, persistent=False)

    def forward(self, audio_input_ids: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        r"""
        audio_input_ids (`torch.Tensor` of shape `(num_audios, max_num_frames, n_mel_bins)`):
            Mel-spectrogram frames of the input audios.
        """
        return self.embed(audio_input_ids + self.offsets).sum(dim=-2)


def test_mel_frames_given_as_ids() -> None:
    config = _Config(n_mel_bins=4, mel_vocab_size=16, text_hidden_size=8)
    # (1, MEL_FRAMES = 3000, the config's n_mel_bins 4), ids below mel_vocab_size 16 (the
    # vocabulary that shares "mel" with the bins), positional as the forward's first argument
    assert default_inputs(_MelTokens(), config) == [InputShape(None, (1, 3000, 4), torch.long, vocab=16)]


class _ConvLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 10, stride=5)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.conv(hidden_states).transpose(1, 2)


class _WaveAsGiven(nn.Module):
    """OmniASR's audio tower: documents a (batch_size, sequence_length) waveform, but hands it
    as it is to a 1-D convolution of one channel."""

    main_input_name = "input_values"

    def __init__(self) -> None:
        super().__init__()
        self.subsampling = _ConvLayers()

    def forward(self, input_values: torch.Tensor | None, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        r"""
        input_values (`torch.Tensor` of shape `(batch_size, sequence_length)`):
            the waveform.
        """
        assert input_values is not None
        hidden_states = self.subsampling(input_values)
        if padding_mask is not None:
            hidden_states = hidden_states * padding_mask[..., None]
        return hidden_states


class _WaveChannelAdded(_WaveAsGiven):
    """wav2vec2's feature encoder: adds the channel itself (``input_values[:, None]``)."""

    def forward(self, input_values: torch.Tensor | None, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        assert input_values is not None
        return self.subsampling(input_values[:, None])


def test_a_waveform_with_its_channel_where_no_forward_adds_it() -> None:
    # a second at 16 kHz; nothing on the way to the one-channel Conv1d adds a dimension on a
    # line naming the input (the padding mask's [..., None] names another): (1, 1, 16000)
    assert default_inputs(_WaveAsGiven(), _Config()) == [InputShape(None, (1, 1, 16_000))]
    # wav2vec2-like: the forward adds the channel, the waveform stays (1, 16000)
    assert default_inputs(_WaveChannelAdded(), _Config()) == [InputShape(None, (1, 16_000))]
