"""The default inputs ``hf:TYPE`` derives for vision and multimodal models from what their
forward says (cli/hf_vision.py), each rule on a tiny model of the class it covers: no
transformers model is built."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from torchtally.cli.hf_inputs import default_inputs
from torchtally.cli.inputs import InputShape


class _ImagePair(nn.Module):
    """A keypoint matcher (SuperGlue, LightGlue, EfficientLoFTR): its forward demands a pair of
    images in its own error message, while its docstring and signature show one image."""

    main_input_name = "pixel_values"

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            pixel_values (`torch.Tensor` of shape `(batch_size, num_channels, image_size, image_size)`):
                the images.
        """
        if pixel_values.ndim != 5 or pixel_values.size(1) != 2:
            raise ValueError("Input must be a 5D tensor of shape (batch_size, 2, num_channels, height, width)")
        return self.conv(pixel_values.flatten(0, 1))


def test_an_image_pair_the_forward_demands() -> None:
    config = SimpleNamespace(image_size=64, num_channels=3)
    # (batch_size, 2, num_channels, height, width): batch 1, the pair's 2, num_channels 3 from
    # the config, height and width the config's image_size 64; positional, as the first argument
    assert default_inputs(_ImagePair(), config) == [InputShape(None, (1, 2, 3, 64, 64))]


class _BoxesAndFeatures(nn.Module):
    """Bros / LXMERT: token ids, and arguments that default to None but that the forward
    refuses to run without, documented with their shapes."""

    main_input_name = "input_ids"

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 8)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        bbox: torch.Tensor | None = None,
        visual_feats: torch.Tensor | None = None,
        visual_pos: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        Args:
            bbox (`'torch.Tensor'` of shape '(batch_size, num_boxes, 4)'):
                the boxes, Bros's quoting.
            visual_feats (`torch.Tensor` of shape `(batch_size, num_visual_features, visual_feat_dim)`):
                the region features.
            visual_pos (`torch.LongTensor` of shape `(batch_size, num_visual_features, 4)`, *optional*):
                ids (no range known): never made.
        """
        if input_ids is not None and attention_mask is not None:
            raise ValueError("not both")  # not a `name is None` check: nothing required
        if bbox is None:
            raise ValueError("You have to specify bbox")
        if visual_feats is None:
            raise ValueError("`visual_feats` cannot be `None`")
        assert input_ids is not None
        return self.embed(input_ids).sum() + bbox.sum() + visual_feats.sum()


def test_arguments_the_forward_refuses_to_run_without() -> None:
    config = SimpleNamespace(vocab_size=100, max_position_embeddings=16, visual_feat_dim=32)
    found = default_inputs(_BoxesAndFeatures(), config)
    assert found == [
        InputShape("input_ids", (1, 16), torch.long, vocab=100),  # 16 positions, below 128 tokens
        # (batch_size, num_boxes, 4): num_boxes no config names: as many as the text's 16 tokens
        InputShape("bbox", (1, 16, 4)),
        # (batch_size, num_visual_features, visual_feat_dim): 16 features (the text's length), 32 wide
        InputShape("visual_feats", (1, 16, 32)),
    ]


class _NeedsIds(_BoxesAndFeatures):
    def forward(  # type: ignore[override]
        self, input_ids: torch.Tensor | None = None, visual_pos: torch.LongTensor | None = None
    ) -> torch.Tensor:
        """
        Args:
            visual_pos (`torch.LongTensor` of shape `(batch_size, num_visual_features, 4)`):
                ids.
        """
        if visual_pos is None:
            raise ValueError("`visual_pos` cannot be `None`")
        assert input_ids is not None
        return self.embed(input_ids)


def test_required_ids_of_an_unknown_range_are_left_to_the_hint() -> None:
    config = SimpleNamespace(vocab_size=100, max_position_embeddings=16)
    assert default_inputs(_NeedsIds(), config) is None


class _Pyramid(nn.Module):
    """DepthPro: the image scaled by each ratio, 8 px patches cut from every level."""

    main_input_name = "pixel_values"

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 8, stride=8)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.conv(pixel_values)


def test_an_image_big_enough_for_every_level_of_the_pyramid() -> None:
    config = SimpleNamespace(patch_size=8, scaled_images_ratios=[0.25, 0.5, 1])
    # no image size named: 224 px would do, but its quarter level must hold an 8 px patch:
    # 8 / 0.25 = 32 px, less than 224: kept
    assert default_inputs(_Pyramid(), config) == [InputShape(None, (1, 3, 224, 224))]
    config = SimpleNamespace(patch_size=384, scaled_images_ratios=[0.25, 0.5, 1])
    # 384 px patches from the quarter level: 384 / 0.25 = 1536 px at least
    assert default_inputs(_Pyramid(), config) == [InputShape(None, (1, 3, 1536, 1536))]


class _Clip(nn.Module):
    """InstructBLIP-Video: its docstring shows one image, its forward unpacks a clip."""

    main_input_name = "pixel_values"

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 4, stride=4)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """
        Args:
            pixel_values (`torch.Tensor` of shape `(batch_size, num_channels, image_size, image_size)`):
                the frames.
        """
        batch_size, frames, channel, height, width = pixel_values.shape
        return self.conv(pixel_values.reshape(batch_size * frames, channel, height, width))


def test_a_clip_the_forward_unpacks() -> None:
    # (batch_size, frames, channel, height, width): batch 1, 8 frames (no num_frames in the
    # config: a short clip), 3 channels, the config's 32 px
    assert default_inputs(_Clip(), SimpleNamespace(image_size=32)) == [InputShape(None, (1, 8, 3, 32, 32))]
    # frames as many as the config names
    assert default_inputs(_Clip(), SimpleNamespace(image_size=32, num_frames=4)) == [InputShape(None, (1, 4, 3, 32, 32))]


class _LinearPatches(nn.Module):
    """Molmo2's vision tower: the pixels go straight into a linear patch embedding."""

    main_input_name = "pixel_values"

    def __init__(self, width: int) -> None:
        super().__init__()
        self.patch_embedding = nn.Linear(width, 8)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """
        Args:
            pixel_values (`torch.Tensor` of shape `(batch_size, num_channels, image_size, image_size)`):
                the image, says the docstring.
        """
        return self.patch_embedding(pixel_values.to(torch.float32))


def test_patches_flattened_for_a_linear_layer_the_forward_feeds_the_pixels() -> None:
    config = SimpleNamespace(image_size=16, patch_size=4)
    # a 16 px image in 4 px patches: 4 x 4 = 16 patches of 3 x 4 x 4 = 48 values
    assert default_inputs(_LinearPatches(48), config) == [InputShape(None, (1, 16, 48))]
    # a width that is no 4 px patch of 3 channels: the image as the config gives it
    assert default_inputs(_LinearPatches(50), config) == [InputShape(None, (1, 3, 16, 16))]


class _GridTower(nn.Module):
    """MiniCPM-V's vision tower: the position embeddings are looked up by the patch grid an
    optional-looking argument gives."""

    main_input_name = "pixel_values"

    def __init__(self) -> None:
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, 8, 4, stride=4)

    def forward(self, pixel_values: torch.Tensor, target_sizes: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            pixel_values (`torch.Tensor` of shape `(batch_size, num_channels, image_size, image_size)`):
                the image.
            target_sizes (`torch.IntTensor` of shape `(batch_size, 2)`, *optional*):
                Patch grid sizes `(h, w)` for computing position embeddings.
        """
        assert target_sizes is not None
        return self.patch_embedding(pixel_values)


def test_a_vision_towers_patch_grid_by_value() -> None:
    config = SimpleNamespace(image_size=32, patch_size=4)
    # a 32 px image in 4 px patches: a grid of 8 x 8, given by value; the image as the config says
    assert default_inputs(_GridTower(), config) == [
        InputShape("pixel_values", (1, 3, 32, 32)),
        InputShape("target_sizes", (1, 2), torch.long, values=((8, 8),)),
    ]


def test_the_image_a_vq_encoder_turns_into_its_latent_grid() -> None:
    config = SimpleNamespace(channel_multiplier=[1, 2, 4], num_patches=4, in_channels=3)
    # 3 levels, halving at each but the last: 2**2 = 4 pixels a latent; 4 latents a side: 16 px
    # (no image size named: 224 px would give a 56 x 56 grid, which the quantizer refuses)
    assert default_inputs(_Pyramid(), config) == [InputShape(None, (1, 3, 16, 16))]


class _MergeTower(nn.Module):
    """VideoLLaMA3's vision tower: packed patches, their grid, and each image's downsampling
    ratio, all required."""

    main_input_name = "pixel_values"

    def __init__(self) -> None:
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, 8, 4, stride=4)

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor, merge_sizes: torch.Tensor) -> torch.Tensor:
        """
        Args:
            pixel_values (`torch.Tensor` of shape `(batch_size, num_channels, image_size, image_size)`):
                the patches.
            grid_thw (`torch.LongTensor` of shape `(num_images_or_videos, 3)`):
                The temporal, height and width dimensions of feature shape for each image.
            merge_sizes (`torch.Tensor` of shape `(num_images_or_videos,)`):
                The spatial downsampling ratio of each image or video feature.
        """
        return self.patch_embedding(pixel_values)


def test_each_images_downsampling_ratio_by_value() -> None:
    config = SimpleNamespace(image_size=16, patch_size=4)
    # a 16 px image in 4 px patches: 16 patches packed (Qwen2-VL-like, hf_inputs._packed) on a
    # 1 x 4 x 4 grid; one ratio for the one image: no spatial_merge_size named, so 1 (no merging)
    assert default_inputs(_MergeTower(), config) == [
        InputShape("pixel_values", (16, 3, 4, 4)),
        InputShape("grid_thw", (1, 3), torch.long, values=((1, 4, 4),)),
        InputShape("merge_sizes", (1,), torch.long, values=(1,)),
    ]


class _Slots(nn.Module):
    """Kosmos-2: the image's features are written into the text where a mask says."""

    main_input_name = "input_ids"

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 8)

    def forward(
        self, input_ids: torch.Tensor | None = None, image_embeds_position_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """
        Args:
            image_embeds_position_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                Mask to indicate the location in a sequence to insert the image features. Mask values selected in `[0,
                1]`.
        """
        assert input_ids is not None and image_embeds_position_mask is not None
        return self.embed(input_ids)


def test_the_slots_of_the_images_features_in_the_text() -> None:
    config = SimpleNamespace(vocab_size=100, max_position_embeddings=8, latent_query_num=3)
    # 8 tokens; the image becomes 3 features (latent_query_num): ones after the first token
    assert default_inputs(_Slots(), config) == [
        InputShape("input_ids", (1, 8), torch.long, vocab=100),
        InputShape("image_embeds_position_mask", (1, 8), torch.long, values=((0, 1, 1, 1, 0, 0, 0, 0),)),
    ]
    # 8 features cannot fit in 8 tokens with one before them (Kosmos-2.5's 2048 in 128): no mask
    config = SimpleNamespace(vocab_size=100, max_position_embeddings=8, latent_query_num=8)
    assert default_inputs(_Slots(), config) == [InputShape(None, (1, 8), torch.long, vocab=100)]
