"""Planar and radial flows (Rezende & Mohamed 2015) and the affine coupling as TFP bijectors.

Rezende & Mohamed (2015), Variational Inference with Normalizing Flows, Section 4.1 and
Appendix A. Equations as numbered in ``notebooks/06_flows.ipynb``:

* (6.5) planar: f(z) = z + u_hat h(w^T z + b), h = tanh;
  log |det df/dz| = log |1 + u_hat^T psi(z)|, psi(z) = h'(w^T z + b) w;
* (6.6) the reparameterisation that keeps it invertible:
  u_hat = u + (m(w^T u) - w^T u) w / ||w||^2, m(a) = -1 + softplus(a), so that
  w^T u_hat = m(w^T u) > -1;
* (6.7) radial: f(z) = z + beta h(alpha, r) (z - z_0), r = ||z - z_0||, h = 1 / (alpha + r);
  log |det| = (d - 1) log(1 + beta h) + log(1 + beta h + beta h' r), with alpha > 0 and
  beta >= -alpha (alpha = softplus(alpha_raw), beta = -alpha + softplus(beta_raw)).

* (6.8) affine coupling (Dinh, Sohl-Dickstein & Bengio 2017):
  :class:`AffineCouplingBijector`.

Symbols -> arguments: u -> ``u``, w -> ``w``, b -> ``b`` (:class:`PlanarBijector`);
z_0 -> ``center``, alpha_raw -> ``alpha_raw``, beta_raw -> ``beta_raw``
(:class:`RadialBijector`). The bijectors hold tensors, not variables: the Keras 3 layers of
``course_lib.flows.steps`` own the variables and build a bijector from them at each call.

Deviations from the paper, stated: m(a) = -1 + max(softplus(a), 1e-3), a floor that only
acts where softplus has underflowed (w^T u < -6.9), so that the determinant cannot round
to zero. The paper needs only the forward direction (it pushes
samples of q_0 through the flow). Both bijectors here also invert, so that the density of
a fitted flow can be drawn on a grid: the radial inverse is closed-form; the planar inverse
solves the scalar equation w^T y = a + (w^T u_hat) tanh(a + b) for a = w^T z by bisection
(the left side is increasing in a because w^T u_hat > -1, and |a - w^T y| <= |w^T u_hat|).
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp

tfb = tfp.bijectors

# Bisection halves an interval of width 2 |w^T u_hat| per step: 60 steps reach float64's
# resolution for any |w^T u_hat| up to about 1e3.
PLANAR_INVERSE_STEPS = 60
# The floor on softplus in m (Eq. 6.6): for w^T u below about -17 (float32) softplus rounds
# to 0, m to exactly -1, and the Jacobian 1 + m h' could reach 0; with the floor it stays
# >= 1e-3 (log-determinant >= -6.9).
PLANAR_MIN_SLACK = 1e-3


def planar_u_hat(u, w):
    """Eq. (6.6): u_hat = u + (m(w^T u) - w^T u) w / ||w||^2, with
    m(a) = -1 + max(softplus(a), PLANAR_MIN_SLACK); then w^T u_hat = m(w^T u) > -1 for every
    u and w != 0."""
    wu = tf.reduce_sum(w * u)
    slack = tf.maximum(tf.math.softplus(wu), PLANAR_MIN_SLACK)
    return u + (-1.0 + slack - wu) * w / tf.reduce_sum(w * w)


class PlanarBijector(tfb.Bijector):
    """Eq. (6.5): y = z + u_hat tanh(w^T z + b), invertible for every ``u``, ``w`` (non-zero)
    and ``b`` because u_hat is Eq. (6.6)'s reparameterisation of ``u``.

    Args:
        u, w: tensors of shape (d,).
        b: a scalar tensor.
    """

    def __init__(self, u, w, b, validate_args=False, name="planar"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            self.u, self.w, self.b = u, w, b
            super().__init__(forward_min_event_ndims=1, validate_args=validate_args,
                             parameters=parameters, name=name)

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(u=tfp.util.ParameterProperties(event_ndims=1),
                    w=tfp.util.ParameterProperties(event_ndims=1),
                    b=tfp.util.ParameterProperties(event_ndims=0))

    @property
    def u_hat(self):
        return planar_u_hat(self.u, self.w)

    def _forward(self, x):
        return x + self.u_hat * tf.tanh(tf.reduce_sum(x * self.w, -1, keepdims=True) + self.b)

    def _forward_log_det_jacobian(self, x):
        slope = 1.0 - tf.square(tf.tanh(tf.reduce_sum(x * self.w, -1) + self.b))   # h'
        return tf.math.log(tf.abs(1.0 + slope * tf.reduce_sum(self.w * self.u_hat)))

    def _inverse(self, y):
        u_hat = self.u_hat
        c = tf.reduce_sum(self.w * u_hat)              # w^T u_hat > -1
        target = tf.reduce_sum(y * self.w, -1)         # w^T y = a + c tanh(a + b)
        b = self.b

        def halve(low, high):
            middle = 0.5 * (low + high)
            too_high = middle + c * tf.tanh(middle + b) > target
            return tf.where(too_high, low, middle), tf.where(too_high, middle, high)

        # A loop op, not a Python loop: unrolled, the 60 steps put ~1,500 ops per planar
        # step into every traced graph (~4,000 with the gradient), and tracing dominated the
        # cost of anything that evaluates a planar flow's density.
        low, high = tf.while_loop(lambda low, high: True, halve,
                                  (target - tf.abs(c), target + tf.abs(c)),
                                  maximum_iterations=PLANAR_INVERSE_STEPS)
        a = 0.5 * (low + high)
        return y - u_hat * tf.tanh(a + self.b)[..., None]

    def _inverse_log_det_jacobian(self, y):
        return -self._forward_log_det_jacobian(self._inverse(y))


def radial_alpha_beta(alpha_raw, beta_raw):
    """Eq. (6.7)'s constraint: alpha = softplus(alpha_raw) > 0, beta = -alpha +
    softplus(beta_raw) >= -alpha, which keeps the radial flow invertible."""
    alpha = tf.math.softplus(alpha_raw)
    return alpha, -alpha + tf.math.softplus(beta_raw)


class RadialBijector(tfb.Bijector):
    """Eq. (6.7): y = z + beta (z - z_0) / (alpha + ||z - z_0||), a contraction or expansion
    around ``center`` z_0; invertible because beta >= -alpha.

    Args:
        center: z_0, a tensor of shape (d,).
        alpha_raw, beta_raw: scalar tensors, mapped to alpha and beta by
            :func:`radial_alpha_beta`.
    """

    def __init__(self, center, alpha_raw, beta_raw, validate_args=False, name="radial"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            self.center, self.alpha_raw, self.beta_raw = center, alpha_raw, beta_raw
            super().__init__(forward_min_event_ndims=1, validate_args=validate_args,
                             parameters=parameters, name=name)

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(center=tfp.util.ParameterProperties(event_ndims=1),
                    alpha_raw=tfp.util.ParameterProperties(event_ndims=0),
                    beta_raw=tfp.util.ParameterProperties(event_ndims=0))

    def _radius(self, x):
        return tf.norm(x - self.center, axis=-1, keepdims=True)

    def _forward(self, x):
        alpha, beta = radial_alpha_beta(self.alpha_raw, self.beta_raw)
        return x + beta * (x - self.center) / (alpha + self._radius(x))

    def _forward_log_det_jacobian(self, x):
        alpha, beta = radial_alpha_beta(self.alpha_raw, self.beta_raw)
        r = self._radius(x)[..., 0]
        h = 1.0 / (alpha + r)
        dim = tf.cast(tf.shape(x)[-1], x.dtype)
        return ((dim - 1.0) * tf.math.log1p(beta * h)
                + tf.math.log1p(beta * h - beta * r * tf.square(h)))   # h' = -h^2

    def _inverse(self, y):
        alpha, beta = radial_alpha_beta(self.alpha_raw, self.beta_raw)
        r_y = self._radius(y)           # = r (1 + beta / (alpha + r)): solve for r >= 0
        c = alpha + beta - r_y
        r = 0.5 * (-c + tf.sqrt(tf.square(c) + 4.0 * alpha * r_y))
        return self.center + (y - self.center) / (1.0 + beta / (alpha + r))

    def _inverse_log_det_jacobian(self, y):
        return -self._forward_log_det_jacobian(self._inverse(y))


class AffineCouplingBijector(tfb.Bijector):
    """Eq. (6.8): x_c passes unchanged; x_t -> x_t * exp(s(x_c)) + t(x_c), where c are the
    ``conditioning`` dimensions and t the others (with ``log_scale`` None: NICE's additive
    coupling, Jacobian 1).

    ``tfb.RealNVP`` computes the same map, but calls the network twice for a density
    evaluation (once for the inverse, once for its log-determinant); this bijector computes
    t and s once per input tensor and reuses them for the log-determinant, which halves the
    cost of maximum-likelihood training.

    Args:
        conditioning: the indices c (a sorted list of ints); the others are transformed.
        dim: D.
        shift_and_log_scale_fn: maps x_c (n, |c|) to (t, s), each (n, D - |c|); s may be
            None.
    """

    def __init__(self, conditioning, dim, shift_and_log_scale_fn, validate_args=False,
                 name="affine_coupling"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            # Plain local lists, O(D): the attributes of a tf.Module are tracked wrappers,
            # slow to iterate, and the bijector is rebuilt at every use of its step.
            conditioning = [int(i) for i in conditioning]
            kept = set(conditioning)
            transformed = [i for i in range(dim) if i not in kept]
            position = {d: k for k, d in enumerate(conditioning + transformed)}
            self.conditioning, self.transformed = conditioning, transformed
            self.reassemble = [position[i] for i in range(dim)]     # back to 0..D-1
            self.shift_and_log_scale_fn = shift_and_log_scale_fn
            self._memo = None
            super().__init__(forward_min_event_ndims=1, validate_args=validate_args,
                             parameters=parameters, name=name)

    def _split(self, x):
        return (tf.gather(x, self.conditioning, axis=-1),
                tf.gather(x, self.transformed, axis=-1))

    def _parts(self, x):
        """(x_c, x_t, t, s) for the tensor x, computed once per tensor (TFP hands the same
        tensor to the map and to its log-determinant)."""
        if self._memo is None or self._memo[0] is not x:
            x_c, x_t = self._split(x)
            shift, log_scale = self.shift_and_log_scale_fn(x_c)
            self._memo = (x, (x_c, x_t, shift, log_scale))
        return self._memo[1]

    def _join(self, a, b):
        return tf.gather(tf.concat([a, b], axis=-1), self.reassemble, axis=-1)

    def _forward(self, x):
        x_c, x_t, shift, log_scale = self._parts(x)
        y_t = x_t if log_scale is None else x_t * tf.exp(log_scale)
        return self._join(x_c, y_t + shift)

    def _inverse(self, y):
        y_c, y_t, shift, log_scale = self._parts(y)
        x_t = y_t - shift
        return self._join(y_c, x_t if log_scale is None else x_t * tf.exp(-log_scale))

    def _forward_log_det_jacobian(self, x):
        _, x_t, _, log_scale = self._parts(x)
        if log_scale is None:
            return tf.zeros(tf.shape(x_t)[:-1], x_t.dtype)
        return tf.reduce_sum(log_scale, axis=-1)

    def _inverse_log_det_jacobian(self, y):
        return -self._forward_log_det_jacobian(y)
