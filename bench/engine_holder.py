"""python -m bench.engine_holder — a plain Python process holding the raw engine, for the memory
section: loads it, transcribes the given clips, prints its own VmRSS/VmHWM as JSON, exits.

    python -m bench.engine_holder --threads 2 --slots 1 en_jfk ko_pv_leopard_test
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from bench import evalset, procmem, raw_engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--slots", type=int, default=1)
    parser.add_argument("clips", nargs="+", help="evaluation clip ids")
    args = parser.parse_args(argv)
    engine = raw_engine.engine(args.threads, args.slots)
    for clip_id in args.clips:
        raw_engine.transcribe_clip(engine, evalset.clip(clip_id))
    memory = procmem.read(os.getpid())
    print(json.dumps({"rss_mib": memory.rss_mib, "peak_mib": memory.peak_mib}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
