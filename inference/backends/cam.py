"""Class-activation maps of the expert DenseNet thresholded into boxes (issue 21 item 1). Pure: no Django.

CAM (Zhou et al., CVPR 2016): the DenseNet ends in ReLU, global average pooling and one linear layer, so each
label's logit is ``b_l + mean_{h,w} sum_c W[l, c] F[c, h, w]`` with ``F`` the final (ReLU'd) feature maps; the map
``CAM_l[h, w] = sum_c W[l, c] F[c, h, w]`` says where the evidence for label ``l`` lies (its mean plus ``b_l`` is
the logit, which the tests check).

The box rule (:func:`cam_box`), stated so a reader of the paper can redo it:

1. the label's CAM (7x7 for a 224 input of DenseNet-121) is upsampled bilinearly to the network input (224x224,
   ``align_corners=False``);
2. pixels at or above ``fraction`` (default 0.5) of the map's maximum are kept; a map whose maximum is not positive
   (no positive evidence anywhere) gives no box;
3. of the kept pixels' connected components (4-connectivity), the largest is taken (ties: the one holding the
   maximum, else the first in raster order);
4. its bounding rectangle, in pixel edges (``x1 = last column + 1``), is mapped back through the input's centre crop
   and resize (:func:`to_image_box`) to pixels of the image the model was given.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

#: Fraction of the map's maximum a pixel must reach to be in a box (step 2 above).
DEFAULT_FRACTION = 0.5


def class_activation_maps(model: Any, x: Any) -> tuple[np.ndarray, np.ndarray]:
    """(CAMs ``(N, L, h, w)``, logits ``(N, L)``) of a torchxrayvision-layout DenseNet (``features``, then ReLU,
    pooling and ``classifier``) for the input batch ``x`` ``(N, 1, H, W)``."""
    # torch is heavy and optional (the demo installs none).
    import torch

    with torch.inference_mode():
        feats = torch.relu(model.features(x)).float()
        weight = model.classifier.weight.float()
        cams = torch.einsum("lc,nchw->nlhw", weight, feats)
        logits = model.classifier(feats.mean(dim=(2, 3)))
    return cams.cpu().numpy(), logits.float().cpu().numpy()


def upsample(cam: np.ndarray, size: int) -> np.ndarray:
    """One ``(h, w)`` map upsampled bilinearly to ``(size, size)`` (``align_corners=False``)."""
    # torch is heavy and optional (the demo installs none).
    import torch

    t = torch.from_numpy(np.ascontiguousarray(cam, dtype=np.float32))[None, None]
    return torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[0, 0].numpy()


def cam_box(heat: np.ndarray, fraction: float = DEFAULT_FRACTION) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` of the largest connected region at or above ``fraction`` of the map's maximum, in pixel
    edges of ``heat``; None when the maximum is not positive."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError("fraction must lie in (0, 1]")
    peak = float(np.max(heat))
    if not np.isfinite(peak) or peak <= 0.0:
        return None
    labels, n = ndimage.label(heat >= fraction * peak)  # 4-connectivity: the default structuring element
    sizes = np.bincount(labels.ravel())[1:]
    largest = np.flatnonzero(sizes == sizes.max()) + 1
    at_peak = labels.flat[int(np.argmax(heat))]
    chosen = at_peak if at_peak in largest else int(largest[0])
    rows, cols = np.nonzero(labels == chosen)
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def to_image_box(box: Sequence[float], image_size: tuple[int, int], input_size: int) -> tuple[float, ...]:
    """A box in pixels of the network input (the image's centre square, resized to ``input_size``) mapped back to
    pixels of the image of ``image_size`` (width, height)."""
    w, h = image_size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    k = side / input_size
    x0, y0, x1, y1 = box
    return (left + x0 * k, top + y0 * k, left + x1 * k, top + y1 * k)
