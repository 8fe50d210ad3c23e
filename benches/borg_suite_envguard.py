"""pytest plugin loaded by benches/borg-suite.sh: every test starts from the same environment.

borg 1.2.4's archiver tests set variables such as BORG_NEW_PASSPHRASE on os.environ and never
restore them, so whichever tests an xdist worker runs after test_change_passphrase create
repositories under the wrong passphrase, and the counts depend on scheduling (borg fails them
too). This plugin snapshots os.environ before each test and restores it afterwards.

It also sets up borg's logging once per pytest process. The whole testsuite runs in-process
tests (ArchiverTestCase) that do this as a side effect; restricted to ArchiverTestCaseBinary, a
test that opens a Repository inside the pytest process before any other did
(test_aes_counter_uniqueness_keyfile, the first test of a worker) meets borg 1.2.4's "tried to
call a logger before setup_logging() was called", with borg itself as borg.exe too.
"""
import os

import pytest


def pytest_sessionstart(session):
    try:
        from borg.logger import setup_logging
    except ImportError:
        return
    setup_logging(level='warning')


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
