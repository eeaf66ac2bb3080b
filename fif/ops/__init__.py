"""The built-in op catalog, one module per family. Importing this package registers them all.

    fif ops            # lists them with signatures and flags
"""

from . import (basic, blocks, classifiers, conv, dct, denoise, edsr, jpeg, masks, nnjpeg, quantize,  # noqa: F401
               wavelet)
