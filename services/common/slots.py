"""A fixed number of concurrent units of work that never makes anyone wait."""


class Slots:
    def __init__(self, total: int) -> None:
        self.total = total
        self.busy = 0

    def try_acquire(self) -> bool:
        if self.busy >= self.total:
            return False
        self.busy += 1
        return True

    def release(self) -> None:
        self.busy = max(0, self.busy - 1)
