"""Input checks for COMET training data, with clear messages."""

from __future__ import annotations

import torch

from ..core.errors import InvalidInputError
from ..core.validation import check_input


def check_data(data: object, name: str, channels: int | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images N×C×H×W float in [0, 1], labels N int)`` → float32 images, int64 labels."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise InvalidInputError(f"{name} must be a pair (images, labels), got "
                                f"{type(data).__name__}")
    images, labels = data
    check_input(images, f"{name} images")  # N×C×H×W, float, non-empty, finite
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or len(labels) != len(images):
        raise InvalidInputError(f"{name}: labels must be a 1-D tensor of {len(images)} classes")
    if float(images.min()) < 0 or float(images.max()) > 1:
        raise InvalidInputError(f"{name}: images must lie in [0, 1] (COMET models normalise "
                                f"inside), got range [{float(images.min()):.3g}, "
                                f"{float(images.max()):.3g}]")
    if labels.is_floating_point() or bool((labels < 0).any()):
        raise InvalidInputError(f"{name}: labels must be non-negative class indices")
    if channels is not None and images.shape[1] != channels:
        raise InvalidInputError(f"{name}: {images.shape[1]} channels, the training data has "
                                f"{channels}")
    return images.float(), labels.long()


def classifier_config(images: torch.Tensor, labels: torch.Tensor,
                      widths: tuple[int, ...], num_classes: int | None = None) -> dict:
    """Config entries that rebuild a :class:`~faithmap.zoo.small_cnn.SmallCNN`."""
    std = float(images.std())
    return {"in_channels": int(images.shape[1]),
            "num_classes": int(num_classes or int(labels.max()) + 1),
            "predictor_widths": list(widths), "mean": float(images.mean()),
            "std": std if std > 0 else 1.0, "input_size": list(images.shape[2:]),
            "stem_stride": 2}
