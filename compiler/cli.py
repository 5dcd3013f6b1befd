"""The `mcuc` command line. Errors a user can cause print one line and exit 2;
a verification mismatch exits 1."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

from mcuc.ir.errors import MCUCError

EXIT_MISMATCH = 1
EXIT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse with short errors: one usage line naming the subcommand's --help, then
    the error (argparse would print the whole usage block)."""

    def error(self, message: str):
        self.exit(EXIT_ERROR, f"usage: {self.prog} ... (see {self.prog} --help)\n{self.prog}: error: {message}\n")


class _VersionAction(argparse.Action):
    """`mcuc --version`: the version mcuc.__version__ gives (setup.cfg's, one source),
    read only when asked, so that other commands do not pay for the metadata lookup."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        import mcuc

        print(f"mcuc {mcuc.__version__}")
        parser.exit(0)


_BYTE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
               "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}


def _byte_count(text: str) -> int:
    """A positive number of bytes: 67108864, 64MiB, 512k, 1G (binary units)."""
    t = text.strip().lower()
    digits = t.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = t[len(digits):]
    if not digits.isdigit() or unit not in _BYTE_UNITS or int(digits) * _BYTE_UNITS[unit] < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive byte count (e.g. 67108864, 64MiB, 1GiB)")
    return int(digits) * _BYTE_UNITS[unit]


def _add_limit_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-tensor-bytes", type=_byte_count, default=None, metavar="BYTES",
                   help="refuse models with a tensor larger than this (default 64MiB; accepts KiB/MiB/GiB), "
                        "checked on the shapes before anything is allocated")


def _add_compile_options(p: argparse.ArgumentParser) -> None:
    from mcuc.pipeline import TARGETS

    p.add_argument("--target", default="cortex-m4", choices=TARGETS, help="core to compile for")
    p.add_argument("--io", choices=("int8", "float"), default=None,
                   help="int8: drop a float model's QUANTIZE/DEQUANTIZE edges (API takes int8)")
    p.add_argument("--patch", default=None, metavar="auto|off|RxC@OP[+cache[=A/B]]",
                   help="patch-based inference: auto (search), off (layer by layer, the default without "
                        "--sram), or stages such as 3x3@12 (a 3x3 grid at op 12's output; see `mcuc plan`); "
                        "+cache (20x1@12+cache) keeps halos in line buffers instead of recomputing them, "
                        "+cache=9/10 only those of ops 9 and 10")
    p.add_argument("--sram", type=int, default=None, metavar="BYTES",
                   help="SRAM budget for the arena; searches patch schedules when layer by layer does not fit")
    p.add_argument("--layout", choices=("nchw", "nhwc"), default=None,
                   help="layout of 4-D inputs/outputs at the API (default: the model's own, nchw for ONNX); "
                        "nhwc makes an ONNX model take and give NHWC data with no transpose")
    p.add_argument("--optimize", choices=("speed", "size"), default="speed",
                   help="speed: -O3 and, on DSP cores, int16 fully connected weights (twice their flash); "
                        "size: -Os and int8 weights")
    p.add_argument("--float-abi", choices=("soft", "softfp", "hard"), default=None,
                   help="float ABI of the Cortex-M build, as the firmware it links into (default: hard on "
                        "cortex-m4/m7/m33 with their FPU, soft on cortex-m0/m3)")
    _add_io_buffers_option(p)
    _add_memory_option(p)
    _add_onnx_numerics_option(p)
    _add_limit_option(p)


def _add_memory_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--memory", default=None, metavar="NAME:SIZE[:COST],...",
                   help="memory regions for the activations and scratch, e.g. dtcm:64K:1,sram:512K:3 (SIZE "
                        "in bytes or K/M, COST the relative time of a byte's access, default 1): the plan puts "
                        "each buffer in a region so that all fit and the estimated access time is small, and "
                        "the C gets one array per region (the first is the arena)")
    p.add_argument("--weights-in-ram", default=None, metavar="REGION",
                   help="keep the model's constant arrays (weights, biases, tables) in RAM region REGION of "
                        "--memory (counted there; initialized data the startup code copies) instead of flash")


def _add_io_buffers_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--io-buffers", choices=("arena", "caller"), default="arena",
                   help="arena: inputs and outputs live inside the arena (NAME_input(i)); caller: in buffers the "
                        "caller passes to NAME_invoke_io, outside the arena, which shrinks by what they took")


def _add_onnx_numerics_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--onnx-numerics", default="exact", metavar="exact|ort-x86-avx2[:threads=N]",
                   help="what an ONNX model computes: exact (default; int8 QDQ on int8, exact int32 sums: "
                        "onnxruntime on ARM, or on x86 with session.qdqisint8allowed=1) or ort-x86-avx2 (the "
                        "bytes of onnxruntime on x86-64 without VNNI: int8 QDQ run as uint8, saturating u8xs8 "
                        "pairs); never taken from the machine that compiles")


def _options(args):
    from mcuc.pipeline import CompileOptions

    return CompileOptions(target=getattr(args, "target", "cortex-m4"), io=getattr(args, "io", None),
                          patch=getattr(args, "patch", None), sram=getattr(args, "sram", None),
                          layout=getattr(args, "layout", None), optimize=getattr(args, "optimize", "speed"),
                          onnx_numerics=getattr(args, "onnx_numerics", "exact"),
                          max_tensor_bytes=getattr(args, "max_tensor_bytes", None),
                          name=getattr(args, "name", None), float_abi=getattr(args, "float_abi", None),
                          arena=getattr(args, "arena", "static"),
                          io_buffers=getattr(args, "io_buffers", "arena"), memory=getattr(args, "memory", None),
                          weights_in_ram=getattr(args, "weights_in_ram", None))


def cmd_ops(args) -> int:
    """`mcuc ops`: the TFLite builtins and ONNX op types mcuc reads."""
    import textwrap

    from mcuc.frontend.onnx import supported_onnx_ops
    from mcuc.frontend.tflite import supported_builtins

    ops = {"tflite": supported_builtins(), "onnx": supported_onnx_ops()}
    if args.json:
        print(json.dumps(ops, indent=2))
        return 0
    sections = [(f"TFLite builtins ({len(ops['tflite'])})", ops["tflite"]),
                ("ONNX, in QDQ form (DequantizeLinear -> op -> QuantizeLinear)", ops["onnx"]["qdq"]),
                ("ONNX, onnxruntime's quantized operators", ops["onnx"]["qoperator"]),
                ("ONNX, quantization and constants", ops["onnx"]["quantization"])]
    for title, names in sections:
        print(f"{title}:")
        print(textwrap.fill(", ".join(names), width=88, initial_indent="  ", subsequent_indent="  "))
    return 0


def cmd_inspect(args) -> int:
    from mcuc.inspect import format_inspection, inspect_model

    report, program = inspect_model(args.model, _options(args))
    print(json.dumps(report, indent=2) if args.json else format_inspection(report, program))
    return 0


def cmd_verify(args) -> int:
    from mcuc.model import load_with_options
    from mcuc.verify import format_verdict, verify

    backends = None  # the default: verify.default_backends(--target)
    if args.backends is not None:
        backends = list(dict.fromkeys(b.strip() for b in args.backends.split(",") if b.strip()))
        if not backends:
            raise MCUCError(f"--backends {args.backends!r} names no backend; give a comma-separated list such as "
                            "reference,llvm")
    options = _options(args)
    report = verify(load_with_options(args.model, options), backends, args.samples, args.seed, options,
                    progress=_show_progress(args))
    print(json.dumps(report, indent=2) if args.json else format_verdict(report))
    return 0 if all(v["bit_exact"] for v in report["backends"].values()) else EXIT_MISMATCH


def cmd_validate(args) -> int:
    from mcuc.api import validate
    from mcuc.validate_data import format_validation

    result = validate(args.model, args.data, labels=args.labels, reference=args.reference, backend=args.backend,
                      per_layer=args.per_layer, image_range=args.image_range, progress=_show_progress(args),
                      target=None if args.backend.startswith("cortex-m") else args.target, io=args.io,
                      layout=args.layout, optimize=args.optimize, onnx_numerics=args.onnx_numerics,
                      max_tensor_bytes=args.max_tensor_bytes, patch=args.patch, sram=args.sram)
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_validation(result))
    return 0 if result.bit_exact else EXIT_MISMATCH


def _value_range(text: str) -> tuple[float, float]:
    """LO,HI with LO < HI (`--image-range 0,1`, `-1,1`, `0,255`)."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LO,HI (e.g. 0,1 or -1,1)") from None
    if not lo < hi:
        raise argparse.ArgumentTypeError(f"{text!r}: LO must be below HI")
    return lo, hi


def _show_progress(args) -> bool:
    """Progress bars (tqdm, on stderr) only for a person at a terminal: never with --json,
    never when stderr is a file or a pipe."""
    return not getattr(args, "json", False) and sys.stderr.isatty()


def cmd_run(args) -> int:
    from mcuc.backend_registry import make_runner
    from mcuc.model import check_input_shapes, load_with_options

    options = _options(args)
    output = _writable_file(args.output, "--output")  # before any work
    model = load_with_options(args.model, options)
    try:
        x = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise MCUCError(f"cannot read input {args.input!r}: {e}") from None
    if len(model.graph.inputs) != 1:
        raise MCUCError(f"{model.name} has {len(model.graph.inputs)} inputs; `mcuc run` takes one .npy")
    check_input_shapes(model, [x])  # a flat, 0-d or NCHW-for-NHWC array is refused
    outputs = make_runner(args.backend, model, options)([x])
    try:
        # Exactly the path given (np.save would append .npy to another name): one output as
        # .npy data, several as an .npz archive (arr_0, arr_1, ...).
        with open(output, "wb") as f:
            if len(outputs) == 1:
                np.save(f, outputs[0])
            else:
                np.savez(f, *outputs)
    except OSError as e:
        raise MCUCError(f"cannot write --output {args.output!r}: {e.strerror or e}") from None
    print(run_summary(model.name, args.backend, outputs, args.output))
    return 0


def run_summary(model: str, backend: str, outputs: list[np.ndarray], path: str) -> str:
    """`mcuc run`'s one line: what ran, the outputs' shapes and dtypes, and where they are."""
    shapes = ", ".join(f"{'arr_%d ' % i if len(outputs) > 1 else ''}[{', '.join(map(str, o.shape))}] {o.dtype}"
                       for i, o in enumerate(outputs))
    what = "output" if len(outputs) == 1 else f"{len(outputs)} outputs"
    return f"ran {model} on {backend}: wrote {what} {shapes} to {path}"


def _writable_file(path: str, option: str) -> Path:
    """`path` as a file mcuc may create or replace: not a directory, in a folder that exists."""
    p = Path(path)
    if p.is_dir():
        raise MCUCError(f"{option} {path!r} is a directory; give a file name")
    if not p.parent.is_dir():
        raise MCUCError(f"{option} {path!r}: the folder {str(p.parent)!r} does not exist")
    return p


def cmd_compile(args) -> int:
    from mcuc.build import check_output_folder, compile_to_directory

    if len(args.models) > 1:
        return _compile_several(args)
    if args.exclusive or args.library is not None:
        raise MCUCError(f"{'--exclusive' if args.exclusive else '--library'} is for a folder of several models "
                        "(mcuc compile A.tflite B.tflite ... -o DIR); with one model, --name names it")
    model_path = args.model = args.models[0]
    check_output_folder(args.output, args.force)
    if getattr(args, "calibrate", None):
        from mcuc.calibrate import quantize_onnx, quantized_path_for

        model_path = str(quantize_onnx(args.model, args.calibrate, quantized_path_for(args.model, args.output),
                                       args.calibrate_activations))
        print(f"quantized {args.model} -> {model_path}", file=sys.stderr)
    report = compile_to_directory(model_path, Path(args.output), _options(args),
                                  verify_samples=args.verify or None, progress=_show_progress(args))
    verification = report.get("verification")
    exact = verification is None or all(v["bit_exact"] for v in verification["backends"].values())
    if not args.json and verification is not None:
        from mcuc.verify import format_verdict

        print(format_verdict(verification))
    print(json.dumps(report, indent=2) if args.json else
          f"wrote {args.output}: {'regions' if 'regions' in report else 'arena'} {report['arena_bytes']:,} B"
          f"{' in all' if 'regions' in report else ''}, "
          f"{'state ' + format(report['state_bytes'], ',') + ' B, ' if report.get('state_bytes') else ''}"
          f"{report['macs']:,} MACs (report.html)")
    if not args.json and "regions" in report:
        from mcuc.report import format_regions

        print(format_regions(report))
    return 0 if exact else EXIT_MISMATCH


def _compile_several(args) -> int:
    """`mcuc compile A B ... -o DIR`: one folder, one library (compiler/bundle.py)."""
    from mcuc.build import check_output_folder
    from mcuc.bundle import DEFAULT_LIBRARY, compile_bundle, summary

    if getattr(args, "calibrate", None):
        raise MCUCError("--calibrate quantizes one float .onnx model; quantize each model first "
                        "(mcuc compile MODEL --calibrate ...), then compile the quantized models together")
    names = args.name
    args.name = None  # one per model, given to compile_bundle, not to every model's options
    options = _options(args)
    check_output_folder(args.output, args.force)
    report = compile_bundle(args.models, Path(args.output), options, names=names, exclusive=args.exclusive,
                            library=args.library or DEFAULT_LIBRARY, verify_samples=args.verify or None,
                            progress=_show_progress(args))
    checks = [m["verification"] for m in report["models"] if "verification" in m]
    exact = all(v["bit_exact"] for c in checks for v in c["backends"].values())
    if not args.json and checks:
        from mcuc.verify import format_verdict

        for model, check in zip(report["models"], checks):
            print(f"{model['name']}: {format_verdict(check)}")
    print(json.dumps(report, indent=2) if args.json else summary(report, args.output))
    return 0 if exact else EXIT_MISMATCH


def cmd_plan(args) -> int:
    from mcuc.plan_cmd import format_plan, load_points, plan_model

    # The table's plot goes to MODEL_plan.svg here unless --svg names the file; --json
    # writes nothing but what --svg asks for (a script's working folder stays as it was).
    if args.svg:
        svg = _writable_file(args.svg, "--svg")
    else:
        svg = None if args.json else Path(f"{Path(args.model).stem}_plan.svg")
    compare = load_points(Path(args.compare)) if args.compare else None
    report = plan_model(args.model, _options(args), svg, progress=_show_progress(args), compare=compare,
                        cycles=args.cycles)
    print(json.dumps(report, indent=2) if args.json else format_plan(report))
    return 0


def cmd_bench(args) -> int:
    from mcuc.bench import bench_models, format_bench

    rows = bench_models(args.models, _options(args), progress=_show_progress(args))
    print(json.dumps(rows, indent=2) if args.json else format_bench(rows, per_layer=args.per_layer))
    return 0 if all(r["bit_exact"] for r in rows) else EXIT_MISMATCH


def build_parser() -> argparse.ArgumentParser:
    from mcuc.backend_registry import BACKENDS

    parser = _Parser(
        prog="mcuc", description="Compile int8 TFLite/ONNX models into C for Arm Cortex-M, "
                                 "and verify every backend bit for bit against the oracle.",
        epilog="Errors in the input print one line and exit 2; a verification mismatch exits 1.")
    parser.add_argument("--version", action=_VersionAction, help="print mcuc's version and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ops", help="the TFLite builtins and ONNX op types mcuc reads")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ops)

    p = sub.add_parser("inspect", help="per-op shapes, MACs, weight and activation bytes")
    p.add_argument("model")
    p.add_argument("--json", action="store_true")
    _add_compile_options(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("verify", help="compare backends with the oracle on random inputs, byte for byte")
    p.add_argument("model")
    p.add_argument("--backends", default=None,
                   help=f"comma-separated: {', '.join(BACKENDS)} (default: reference, llvm, c-host and the "
                        "--target core in the emulator, each when its toolchain is present)")
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    _add_compile_options(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("validate", help="run your own samples: accuracy and errors against the float model, "
                                        "bit-exactness against the oracle")
    p.add_argument("model")
    p.add_argument("--data", required=True, metavar="X.npy|X.npz|IMAGE_FOLDER",
                   help="samples: .npy (one input; one sample or a stack), .npz (one array per input name) or a "
                        "folder of images (class subfolders give labels); floats are quantized with the input's "
                        "scale and zero point, integers taken as quantized")
    p.add_argument("--labels", default=None, metavar="Y.npy", help="class indices [count] or one-hot rows")
    p.add_argument("--reference", default=None, metavar="FLOAT_MODEL",
                   help="the float .tflite/.onnx model (for a --calibrate model: the float original) the errors "
                        "are measured against")
    p.add_argument("--backend", default="llvm", choices=BACKENDS, help="where the compiled model runs (default llvm)")
    p.add_argument("--per-layer", action="store_true",
                   help="also the errors per intermediate tensor whose name the float model has")
    p.add_argument("--image-range", type=_value_range, default=(0.0, 1.0), metavar="LO,HI",
                   help="float range image pixels 0..255 map to (default 0,1)")
    p.add_argument("--json", action="store_true")
    _add_compile_options(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="run a model on one input .npy")
    p.add_argument("model")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True,
                   help="file to write, exactly this name: .npy data (an .npz archive for several outputs)")
    p.add_argument("--backend", default="reference", choices=BACKENDS)
    _add_compile_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compile", help="write C for a Cortex-M project (several models: one folder, one library)")
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help="a .tflite/.onnx model; several write one folder with model_<name>.c/.h per model, "
                        "built into one library (all with the same options)")
    p.add_argument("-o", "--output", required=True,
                   help="output folder: new, empty, or one mcuc compiled into before (else --force)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder mcuc did not create (replacing files of the same names)")
    p.add_argument("--json", action="store_true", help="print report.json")
    p.add_argument("--verify", type=int, nargs="?", const=10, default=0, metavar="SAMPLES",
                   help="also run `mcuc verify`'s default check (on SAMPLES random inputs, default 10); its result "
                        "goes into report.json and report.html, and a mismatch exits 1")
    p.add_argument("--calibrate", metavar="SAMPLES",
                   help="quantize a float .onnx first (onnxruntime, QDQ, per-channel int8) on these samples: "
                        "a .npy file or a folder of .npy files; the quantized model is written into the output folder "
                        "(MODEL.quant.onnx)")
    p.add_argument("--calibrate-activations", choices=("int8", "uint8"), default="int8",
                   help="activation type of the --calibrate quantization")
    p.add_argument("--name", default=None,
                   help="prefix of every symbol, macro and section of the generated C (a C identifier; "
                        "default: the model file's name made one); with several models one per model, "
                        "comma-separated, in order (A,B,...)")
    p.add_argument("--exclusive", action="store_true",
                   help="with several models: declare that they never run at the same time, so they share one "
                        "arena (the largest of their plans) instead of one each")
    p.add_argument("--library", default=None, metavar="NAME",
                   help="with several models: the name of the folder's library (libNAME.a, the CMake target), "
                        "its header NAME.h and shared arena NAME_arena (default: models)")
    p.add_argument("--arena", choices=("static", "caller"), default="static",
                   help="static: the arena is an array in model.c (section overridable with "
                        "-DNAME_ARENA_SECTION); caller: NAME_invoke(arena) takes it")
    _add_compile_options(p)
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("plan", help="patch schedules: peak memory vs MAC overhead (table and SVG plot)")
    p.add_argument("model")
    p.add_argument("--json", action="store_true")
    p.add_argument("--svg", default=None, help="where to write the plot (default: MODEL_plan.svg here; with --json no plot "
                        "unless --svg is given)")
    p.add_argument("--target", default="cortex-m4", help="core whose kernel scratch the plan includes")
    p.add_argument("--io", choices=("int8", "float"), default=None,
                   help="int8: drop a float model's QUANTIZE/DEQUANTIZE edges (API takes int8)")
    p.add_argument("--layout", choices=("nchw", "nhwc"), default=None,
                   help="layout of 4-D inputs/outputs at the API (as in compile)")
    p.add_argument("--compare", default=None, metavar="CSV",
                   help="points to compare with (header label,arena_bytes,mac_factor; # comments): each "
                        "gets the schedule of fewest MACs within its bytes, in the table and on the plot")
    p.add_argument("--cycles", action="store_true",
                   help="also run each schedule of the front on the emulated --target core: instructions and "
                        "estimated cycles beside arena and MACs (a few seconds per schedule)")
    _add_io_buffers_option(p)
    _add_onnx_numerics_option(p)
    _add_limit_option(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("bench", help="compile, emulate and measure: instructions, estimated cycles, SRAM, flash")
    p.add_argument("models", nargs="+")
    p.add_argument("--json", action="store_true", help="print the figures as JSON, per step included")
    p.add_argument("--per-layer", action="store_true",
                   help="also print one row per step: op, output shape, kernel, MACs, instructions, "
                        "estimated cycles, MAC/cycle, arena bytes live")
    _add_compile_options(p)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MCUCError as e:
        print(f"mcuc: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `mcuc inspect MODEL | head`: the reader left. Quiet, like other Unix tools; stdout
        # goes to /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
