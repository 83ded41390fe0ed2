"""The old spelling `python -m core.calllog …`, kept for one release: says the new one, then runs it (promptlab: old-spelling shim).

Nothing imports this module (tests/test_architecture.py); the command line is core/cli.py.
"""
if __name__ == "__main__":
    import sys

    from core.cli import old_spelling

    sys.exit(old_spelling("core.calllog"))
