"""Build a small graph: fan-out, fan-in and a loop that ends by itself; print it as DOT."""

from celestialflow import TaskGraph, TaskManager


def inc(x):
    return x + 1


def double(x):
    return x * 2


def gate(x):
    if x > 50:
        raise ValueError("above the bound")
    return x


if __name__ == "__main__":
    g = TaskGraph("example", record_failures=False)
    a = g.add_stage(TaskManager(inc, log_to_file=False))
    b = g.add_stage(TaskManager(double, log_to_file=False))
    c = g.add_stage(TaskManager(gate, log_to_file=False))
    g.connect(a, [b, c])
    g.connect(c, a)  # a loop a -> c -> a, ended by the gate
    g.start_graph({a: [1, 2, 3]})
    for name, status in g.get_status_dict().items():
        print(name, status["state"], status["succeeded"], status["failed"])
    print(g.to_dot())
