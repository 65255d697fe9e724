"""The harness of the epoch benchmarks (``bench_vae.py``, ``bench_flows.py``): a compiled
model, its ``fit`` call, and the starting state every timed epoch begins from."""

import statistics
import time

from timing import settle


class Contender:
    """A compiled model, its fit call and a snapshot of its starting state (weights and the
    built optimizer's zeroed slots) that every timed epoch starts from. The model's
    optimizer (Keras 3 or tf-keras) must be set by ``compile`` before."""

    def __init__(self, name, model, fit, loss_key):
        self.name, self.model, self.fit, self.loss_key = name, model, fit, loss_key
        model.optimizer.build(model.trainable_variables)
        self.weights = model.get_weights()
        self.slots = [v.numpy() for v in model.optimizer.variables]
        self.times, self.cpu_times, self.losses = [], [], []

    def reset(self):
        self.model.set_weights(self.weights)
        for variable, value in zip(self.model.optimizer.variables, self.slots, strict=True):
            variable.assign(value)

    def warm_up(self, x):
        start = time.perf_counter()
        self.fit(x)
        self.reset()
        return time.perf_counter() - start

    def timed_epoch(self, x):
        self.reset()
        settle()
        start, cpu_start = time.perf_counter(), time.process_time()
        history = self.fit(x)
        self.times.append(time.perf_counter() - start)
        self.cpu_times.append(time.process_time() - cpu_start)
        self.losses.append(float(history.history[self.loss_key][-1]))

    def report(self, width):
        """Prints the epoch times and the final loss; returns the median epoch time."""
        runs = ", ".join(f"{t:.2f}" for t in self.times)
        print(f"{self.name:<{width}} epoch: median {statistics.median(self.times):6.2f} s, "
              f"min {min(self.times):6.2f} s, median CPU {statistics.median(self.cpu_times):6.2f}"
              f" s (runs: {runs}); final train loss {self.losses[-1]:.2f} nats")
        return statistics.median(self.times)
