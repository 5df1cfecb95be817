"""The TaskManager guide's example: custom hooks, thread mode, caches on."""

from collections import defaultdict

from celestialflow import TaskManager


class ExampleTaskManager(TaskManager):
    def get_args(self, task):
        num1, num2 = task
        if num1 < 0 or num2 < 0:
            raise ValueError("num must large than 0.")
        return num1, num2

    def process_result(self, task, result):
        num1, num2 = task
        return f"{num1} + {num2} = {result}"

    def process_result_dict(self):
        return {**self.success_dict, **self.error_dict}

    def handle_error_dict(self):
        error_groups = defaultdict(list)
        for task, error in self.error_dict.items():
            error_groups[error].append(task)
        return dict(error_groups)


def example_task(x, y):
    return x + y


if __name__ == "__main__":
    manager = ExampleTaskManager(
        func=example_task,
        execution_mode="thread",
        worker_limit=50,
        unpack_task_args=False,
        enable_success_cache=True,
        enable_error_cache=True,
        progress_desc="Example Processing",
        show_progress=True,
        log_to_file=False,
    )
    manager.start([(1, 2), (3, 4), (5, 6), (-7, 8)])
    print("Results:", manager.get_success_dict())
    print("Errors:", manager.get_error_dict())
