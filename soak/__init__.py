"""`make soak` (`python -m soak`): load and fault runs against `photovault serve` in a subprocess,
on 127.0.0.1 only, bounded in time; writes docs/reliability.md."""
