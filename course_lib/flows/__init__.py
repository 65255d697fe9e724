"""The flow family (Chapter 6): normalizing flows on TFP bijectors with Keras 3 networks.

- ``bijectors``: the planar and radial flows and the affine coupling as ``tfb.Bijector``
  subclasses.
- ``made``: the MADE layer and :class:`BinaryMADE`, its density model of binary images.
- ``steps``: flow steps as Keras 3 layers that own the variables and build a bijector
  (planar, radial, affine/additive coupling, scaling, act-norm, invertible linear,
  permutation, MAF/IAF).
- ``architectures``: the papers' flows as lists of steps (NICE, RealNVP, MAF, IAF, Glow,
  planar and radial flows).
- ``model``: :class:`FlowModel`, the ``keras.Model`` that owns the transformed distribution
  and trains it by maximum likelihood or by reverse KL.
- ``energies``: Rezende & Mohamed's 2-D target energies U1-U4 and their log Z.
- ``pixels``: dequantisation, the logit transform and the log-likelihood conventions.
"""

from course_lib.flows import architectures, energies, pixels
from course_lib.flows.bijectors import AffineCouplingBijector, PlanarBijector, RadialBijector
from course_lib.flows.made import MADE, BinaryMADE
from course_lib.flows.model import FlowModel
from course_lib.flows.steps import (
    ActNorm,
    AffineCoupling,
    FlowStep,
    InvertibleLinear,
    MAFStep,
    Permutation,
    PlanarStep,
    RadialStep,
    Scaling,
)

__all__ = ["architectures", "energies", "pixels", "AffineCouplingBijector", "PlanarBijector",
           "RadialBijector", "MADE", "BinaryMADE", "FlowModel", "ActNorm", "AffineCoupling",
           "FlowStep", "InvertibleLinear", "MAFStep", "Permutation", "PlanarStep", "RadialStep",
           "Scaling"]
