"""The built-in op catalog, one module per family. Importing this package registers them all.

    fif ops            # lists them with signatures and flags
"""

from . import (basic, blocks, classifiers, conv, dct, denoise, edsr, jpeg, kpfilter, kpn, masks,  # noqa: F401
               nnjpeg, padding, quantize, vit, wavelet)
