"""pytest plugin loaded by benches/borg-suite.sh: every test starts from the same environment.

borg 1.2.4's archiver tests set variables such as BORG_NEW_PASSPHRASE on os.environ and never
restore them, so whichever tests an xdist worker runs after test_change_passphrase create
repositories under the wrong passphrase, and the counts depend on scheduling (borg fails them
too). This plugin snapshots os.environ before each test and restores it afterwards.
"""
import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
