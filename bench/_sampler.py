"""What the benches measure about a run besides its seconds: peak memory and the parse workers' CPU."""

from __future__ import annotations

import threading


class Sampler:
    """Peak RSS of this process plus all its descendants (the parse workers are the forkserver's children,
    which ``getrusage`` does not see), and their CPU time, sampled every 0.1 s with psutil."""

    def __init__(self) -> None:
        import psutil

        self.me, self.peak, self.cpu, self.stop = psutil.Process(), 0, {}, threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        import psutil

        while not self.stop.wait(0.1):
            total = 0
            for p in [self.me, *self.me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                    if p.pid != self.me.pid:
                        t = p.cpu_times()
                        self.cpu[p.pid] = t.user + t.system
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)

    def close(self) -> tuple[int, float]:
        """Stop sampling; (peak bytes, the descendants' CPU seconds)."""
        self.stop.set()
        self.thread.join()
        return self.peak, sum(self.cpu.values())
