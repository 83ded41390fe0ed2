"""The old spelling `python -m core.safety …`, kept for one release: says the new one, then runs it (promptlab: old-spelling shim).

Nothing imports this module (tests/test_architecture.py); the command line is core/cli.py, reached by module name
(runpy) so that no library path imports it.
"""
if __name__ == "__main__":
    import runpy
    import sys

    print("note: `python -m core.safety` is now `python -m core redaction-table`; the old spelling goes in the next release.",
          file=sys.stderr)
    sys.argv[1:1] = ["redaction-table"]
    runpy.run_module("core", run_name="__main__", alter_sys=True)
