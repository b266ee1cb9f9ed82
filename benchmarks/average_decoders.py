"""Average the weights of decoders of one shape into one decoder file (optionally setting its margin).

A decoder fine-tuned from another stays in its basin, and the two decoders' average decodes between them
(weight-space ensembling: Wortsman et al., "Robust fine-tuning of zero-shot models", 2022). AdaIN's decoder
trained behind a reflected margin (`make adain-margin`) drifted between held-out paintings as its fine-tunes
do; averaged with the decoder it started from, it keeps the margin's clean edges at stage 6's scores.

--margin sets the px of reflection inference runs the result inside of (the file's DecoderArch.margin): a
decoder trained behind 32 px runs as cleanly behind 16 at 1.07x the plain decoder's time instead of 1.13x.

    python benchmarks/average_decoders.py out/adain_margin.safetensors out/adain_stage6.safetensors \
        --margin 16 -o out/adain_averaged.safetensors
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from painterly.errors import PainterlyError  # noqa: E402
from painterly.nets.io import load_decoder, save_decoder  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("decoders", nargs="+", type=Path, help="decoder files of one method, level and shape; the "
                    "first one's training metadata is kept (not its losses)")
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--margin", type=int, default=None, help="px of reflection inference runs the result inside "
                    "of (default: the first decoder's)")
    args = ap.parse_args()
    try:
        first, meta = load_decoder(args.decoders[0])
        states = [first.state_dict()]
        for path in args.decoders[1:]:
            other, other_meta = load_decoder(path)
            shapes = {k: v.shape for k, v in other.state_dict().items()}
            if shapes != {k: v.shape for k, v in states[0].items()} or other_meta.get("method") != meta.get("method"):
                raise PainterlyError(f"'{path}' is not a decoder of the same method and shape as "
                                     f"'{args.decoders[0]}'")
            states.append(other.state_dict())
        first.load_state_dict({k: sum(s[k].float() for s in states) / len(states) for k in states[0]})
        if args.margin is not None:
            first.arch = dataclasses.replace(first.arch, margin=args.margin)
        # the first decoder's training stays (what the margin was trained at, say); its losses were its own
        info = {k: v for k, v in meta.items() if k not in ("format", "kind", "architecture", "losses", "log")}
        info["averaged_from"] = [str(p) for p in args.decoders]
        save_decoder(args.output, first, info)
    except PainterlyError as exc:
        print(f"average_decoders: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: the average of {len(states)} decoders, margin {first.arch.margin} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
