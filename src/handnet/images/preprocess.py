"""Photo preprocessing for `predict` and `serve`: a picture of a digit made MNIST-like.

The steps live one layer down, in `handnet.data.photo`, so that image folders
(`handnet.data.folder`) are read exactly as `predict` reads a photo; this module names them for
the image side of the package.
"""

from handnet.data.photo import (
    FORMATS,
    ImageError,
    NoInkError,
    centre_of_mass,
    fit_to_field,
    ink_image,
    load_image,
    preprocess_digit,
    to_uint8,
)

__all__ = [
    "FORMATS",
    "ImageError",
    "NoInkError",
    "centre_of_mass",
    "fit_to_field",
    "ink_image",
    "load_image",
    "preprocess_digit",
    "to_uint8",
]
