"""The audio front end: raw audio in, the features a network reads out (the seed's keyword spotter: "a keyword
spotting network cannot work alone. The network is using the output of a Mel-Frequency Cepstral Coefficient
(MFCC) ... Hence, in a full solution, CMSIS-DSP should also be used").

A model folder declares it in ``model.toml`` (``[frontend]``, :mod:`.spec`). ``kind = "mfcc"`` is CMSIS-DSP's MFCC,
exactly: frames of ``frame_length`` samples every ``frame_step`` samples, each zero-padded to ``fft_length`` and
given to ``arm_mfcc_q15`` (``word = "q15"``) or ``arm_mfcc_f32`` (``"f32"``), whose instance holds a periodic Hann
window of ``frame_length`` (zero-padded), the Mel filter bank of ``cmsisdsp.mfcc.melFilterMatrix`` and the DCT of
``cmsisdsp.mfcc.dctMatrix``. :mod:`.mfcc` computes those tables at generation time and, with the ``cmsisdsp``
package, the features (the oracle the generated C is proven against); :mod:`.codegen` writes the C that calls
CMSIS-DSP (its sources come from the ``cmsisdsp`` source distribution, :mod:`nnscons.cmsis_dsp`).
"""
from .spec import FrontendSpec, frontend_text_beside, parse_frontend, read_frontend, spec_from_text, spec_text

__all__ = ["FrontendSpec", "frontend_text_beside", "parse_frontend", "read_frontend", "spec_from_text", "spec_text"]
