"""No file of the repository points at a file that does not exist (a path under one of the repo's
top-level folders), nor at notes that live outside it."""
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOP = ("gmt_ros", "sim2sim", "config", "docs", "launch", "models", "scripts", "test", ".ci")
PATH_REF = re.compile(r"(?<![\w/.-])((?:" + "|".join(re.escape(t) for t in TOP) + r")/[\w./-]*[\w-])")
OUTSIDE = ("PLATFORM_NOTES", "G1_PROTOCOL", "STYLE_EXAMPLES", "GUIDE.md", "TEAM_RULES")
TEXT = (".py", ".md", ".yaml", ".sh", ".cfg", ".xml", ".txt", ".ini", "run")


def tracked_text_files():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return [f for f in files if f.endswith(TEXT) and (REPO / f).is_file()]


def test_repo_paths_that_files_mention_exist():
    missing = []
    for rel in tracked_text_files():
        text = (REPO / rel).read_text(errors="replace")
        for m in PATH_REF.finditer(text):
            ref = m.group(1).rstrip(".")
            if "<" in ref or ref.endswith("/"):
                continue
            if text[m.end(1):m.end(1) + 1] == "*":  # a glob (docs/bench/before_*): something must match it
                if not any((REPO / ref).parent.glob(Path(ref).name + "*")):
                    missing.append(f"{rel}: {ref}* (matches nothing)")
                continue
            if not (REPO / ref).exists() and not any((REPO / ref).parent.glob(Path(ref).name + ".*")):
                missing.append(f"{rel}: {ref}")
    assert not missing, "references to files that do not exist:\n" + "\n".join(missing)


def test_no_file_cites_notes_kept_outside_the_repository():
    cited = [f"{rel}: {name}" for rel in tracked_text_files() if not rel.startswith("test/test_references")
             for name in OUTSIDE if name in (REPO / rel).read_text(errors="replace")]
    assert not cited, cited
