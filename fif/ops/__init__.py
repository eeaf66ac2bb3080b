"""The built-in op catalog, one module per family. Importing this package registers them all.

    fif ops            # lists them with signatures and flags
"""

from . import (basic, blocks, classifiers, conv, dct, deflect, denoise, edsr, geometric, jpeg, kpfilter,  # noqa: F401
               kpn, masks, nnjpeg, padding, quantize, shield, thermometer, tv, vit, wavelet)
