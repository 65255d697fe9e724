"""Two replicas (``MirroredStrategy`` on two logical CPUs) train as one device would.

What a student with two GPUs runs must give the single-device update, keep state that lives
outside the optimizer (persistent chains, FPCD's fast weights) identical on every replica,
and give each replica its own random numbers. Logical devices must be configured before
TensorFlow starts, so each check runs in a child process (one start for all of them).

The exact comparisons use models whose sigmoids all saturate (weights of +-30, biases of 15:
every pre-activation is 15 plus a multiple of 30), so their samples are the same whatever
the random numbers are, and a step under two replicas must equal the one-device step. The
bugs they catch: the replicas' losses not divided by their number (steps twice as long),
fast weights updated from one replica's gradient (half the update). The unsaturated runs
catch every replica running all the chains (with their own numbers, the copies drift
apart); the block check catches a replica taking the wrong block or a gather in the wrong
order; the draw check catches a seed stream shared by the replicas.
"""

import textwrap

import keras
import numpy as np
import tensorflow as tf
from replicas import TWO_CPUS, run_script

from course_lib import sampling
from course_lib.training import sum_over_replicas

SCRIPT = TWO_CPUS + textwrap.dedent("""
    import sys
    from course_lib import sampling
    from course_lib.boltzmann import DBM, BernoulliRBM
    from course_lib.variational import VQVAE

    rng = np.random.default_rng(0)
    x = (rng.random((32, 8)) < 0.5).astype("float32")

    def saturate(model):
        for v in model.trainable_variables:
            if len(v.shape) == 2:
                v.assign((30.0 * np.sign(rng.normal(size=v.shape))).astype("float32"))
            else:
                v.assign(np.full(v.shape, 15.0, "float32"))
        return [w.copy() for w in model.get_weights()]

    def run(strategy, make, start, data, batch_size, learning_rate=1e-3):
        with strategy.scope():
            model = make()
            model.compile(optimizer=keras.optimizers.SGD(learning_rate))
        model.set_weights(start)
        model.fit(data, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        if strategy is TWO:
            same_on_every_replica(model)
        # by position (paths carry a per-instance counter); the seed state is no weight
        return model, {i: (v.path, v.numpy()) for i, v in enumerate(model.weights)
                       if "seed" not in v.path}

    def compare(name, make, data, batch_size, saturated=True):
        with ONE.scope():
            probe = make()
        start = saturate(probe) if saturated else probe.get_weights()
        _, one = run(ONE, make, start, data, batch_size)
        _, two = run(TWO, make, start, data, batch_size)
        assert len(start) == len(probe.weights)
        for i, (path, value) in one.items():
            moved = np.abs(value - start[i]).max()
            err = np.abs(two[i][1] - value).max()
            assert err <= 1e-3 * max(moved, 1e-6) + 1e-7, (name, path, err, moved)
        print(name, "equal")

    cases = {
        "PCD": lambda: BernoulliRBM(8, 4, sampler="pcd", k=2, num_chains=8, seed=0),
        "FPCD": lambda: BernoulliRBM(8, 4, sampler="fpcd", num_chains=8, seed=0,
                                     fast_learning_rate=0.5),
        "DBM": lambda: DBM([8, 6, 4], num_chains=8, gibbs_steps=2, mean_field_steps=3, seed=0),
    }
    for name, make in cases.items():
        compare(name, make, x, 16)
    images = (rng.random((16, 64)) < 0.5).astype("float32")
    compare("VQVAE", lambda: VQVAE((8, 8), num_embeddings=4, embedding_dim=2, filters=(4,),
                                   seed=0), images, 16, saturated=False)

    # Unsaturated: the replicas' numbers differ, yet the stored state stays one state.
    for sampler in ("pcd", "fpcd"):
        with TWO.scope():
            model = BernoulliRBM(8, 4, sampler=sampler, num_chains=8, seed=0)
            model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit(x, batch_size=8, epochs=3, verbose=0)
        same_on_every_replica(model)
    print("state identical")

    # Replica r works on block r of the rows, and gathering puts the blocks back in order.
    rows = tf.reshape(tf.range(16.0), (8, 2))
    blocks = TWO.run(tf.function(lambda: sampling.replica_rows(rows)))
    np.testing.assert_array_equal(blocks.values[0].numpy(), rows.numpy()[:4])
    np.testing.assert_array_equal(blocks.values[1].numpy(), rows.numpy()[4:])
    back = TWO.run(tf.function(
        lambda: sampling.gather_replica_rows(sampling.replica_rows(rows))))
    for copy in back.values:
        np.testing.assert_array_equal(copy.numpy(), rows.numpy())

    # Each replica draws its own numbers; the generator's state advances alike on both.
    with TWO.scope():
        generator = keras.random.SeedGenerator(0)
    draws = TWO.run(tf.function(lambda: sampling.uniform((64,), generator)))
    first, second = [t.numpy() for t in draws.values]
    assert not np.allclose(first, second), "both replicas drew the same numbers"
    first_state, second_state = copies(generator.state)
    np.testing.assert_array_equal(first_state, second_state)

    # Chains that do not split evenly among the replicas are refused, with the reason.
    with TWO.scope():
        odd = BernoulliRBM(8, 4, sampler="pcd", num_chains=7, seed=0)
        odd.compile(optimizer=keras.optimizers.SGD(0.1))
    try:
        odd.fit(x, batch_size=8, epochs=1, verbose=0)
    except ValueError as error:
        assert "split evenly among the 2 replicas" in str(error), error
    else:
        raise AssertionError("7 chains on 2 replicas were accepted")
    print("DISTRIBUTE_OK")
""")


def test_two_replicas_train_as_one_device(tmp_path):
    run_script(tmp_path, SCRIPT, "DISTRIBUTE_OK", shared=True)


def test_on_one_device_the_replica_helpers_change_nothing():
    x = tf.reshape(tf.range(12.0), (6, 2))
    assert sampling.replica_position() == (0, 1)
    assert sampling.replica_rows(x) is x and sampling.gather_replica_rows(x) is x
    values = [tf.constant(1.5), tf.ones(3)]
    summed = sum_over_replicas(values)
    for a, b in zip(summed, values, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_one_device_draws_are_keras_own():
    """On one device a SeedGenerator draw is Keras' own draw: seeded runs keep their numbers."""
    ours = sampling.uniform((5,), keras.random.SeedGenerator(3))
    theirs = keras.random.uniform((5,), seed=keras.random.SeedGenerator(3))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
