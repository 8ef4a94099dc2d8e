"""The house rules: no import circle among softcot's modules, a task registry at the ground floor,
`softcot --help` without torch, and benchmark scripts that compile."""
import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "softcot"


def module_imports(path: Path) -> set[str]:
    """softcot modules imported at module level (not inside functions or `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("softcot"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # `from softcot import distributed`
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("softcot")}
    return found


def graph() -> dict[str, set[str]]:
    mods = {}
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        mods[name] = p
    return {m: {i for i in module_imports(p) if i in mods and i != m} for m, p in mods.items()}


def test_no_import_circle():
    g = graph()
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for n in g[m]:
            assert state.get(n) != 1, "import circle: " + " -> ".join(path + [n])
            if n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in g:
        if m not in state:
            visit(m, [m])


def test_task_registry_is_the_ground_floor():
    g = graph()
    assert g["softcot.tasks"] == set()
    for reader in ("softcot.data", "softcot.prompts", "softcot.scoring"):
        assert "softcot.tasks" in g[reader], reader


def test_help_does_not_import_torch():
    code = ("import sys\nfrom softcot.cli import build_parser\n"
            "for cmd in (['--help'], ['train', '--help'], ['eval', '--help']):\n"
            "    try:\n        build_parser().parse_args(cmd)\n    except SystemExit:\n        pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_every_benchmark_script_compiles():
    """Benchmarks run on demand, not in CI, so a script that does not even compile would go unseen
    (bench_shapes.py once declared a global after reading it)."""
    bench = PKG.parent / "benchmarks"
    for p in sorted(bench.glob("*.py")):
        compile(p.read_text(), str(p), "exec")  # a SyntaxError names the file and line
