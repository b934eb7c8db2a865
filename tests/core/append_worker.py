"""A separate process that appends batches and acknowledges each on stdout.

Usage: python append_worker.py DB_URL WRITER_TAG BATCHES BATCH_SIZE
Each batch's events share a correlation id (the batch id) and carry the batch's
size in ``horizon``, so a reader can tell a whole batch from a partial one. After
each append returns, the worker prints ``ACK <batch id> <first> <last>``.
"""

import sys
import uuid

from tapereader.core.events import SignalGenerated, Source
from tapereader.core.store import EventStore, RetryPolicy


def main() -> None:
    url, tag, batches, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    source = Source(component="append_worker", run_id=tag)
    retry = RetryPolicy(attempts=50, initial_backoff_s=0.005, max_backoff_s=0.1)
    with EventStore.open(url, retry=retry) as store:
        for b in range(batches):
            batch_id = uuid.uuid4()
            events = [
                SignalGenerated(
                    ts_event=1_723_161_255_000_000_000 + b * size + i,
                    ts_init=0,
                    source=source,
                    correlation_id=batch_id,
                    instrument_id=f"{tag}.TEST",
                    model_version=str(b),
                    feature_spec_hash=str(i),
                    horizon=str(size),
                    p_up=0.5,
                    p_down=0.25,
                    p_flat=0.25,
                    confidence=0.5,
                )
                for i in range(size)
            ]
            result = store.append(events)
            print(f"ACK {batch_id} {result.positions[0]} {result.positions[-1]}", flush=True)


if __name__ == "__main__":
    main()
