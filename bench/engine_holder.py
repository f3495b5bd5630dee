"""python -m bench.engine_holder — a plain Python process holding the raw engine, for the memory
section: loads it, transcribes the given clips (or a file up to its first segment), prints its
own VmRSS/VmHWM as JSON, exits.

    python -m bench.engine_holder --threads 2 --slots 1 en_jfk ko_pv_leopard_test
    python -m bench.engine_holder --threads 2 --file long.wav --language ko
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bench import procmem, raw_engine
from devsupport import evalset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--slots", type=int, default=1)
    parser.add_argument("--file", type=Path, help="transcribe this file up to its first segment")
    parser.add_argument("--language", default="", help="of --file")
    parser.add_argument("clips", nargs="*", help="evaluation clip ids")
    args = parser.parse_args(argv)
    engine = raw_engine.engine(args.threads, args.slots)
    for clip_id in args.clips:
        raw_engine.transcribe_clip(engine, evalset.clip(clip_id))
    if args.file:
        # Features for the whole file are computed before the first segment: the peak is there.
        content = args.file.read_bytes()
        raw_engine.transcribe(engine, content, args.language, first_segment_only=True)
    memory = procmem.read(os.getpid())
    print(json.dumps({"rss_mib": memory.rss_mib, "peak_mib": memory.peak_mib}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
