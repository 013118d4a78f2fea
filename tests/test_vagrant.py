"""vagrant/Vagrantfile: Vagrant accepts it, and its provisioning is the README's install step.

``vagrant validate`` needs no box and no VM. Without a provider installed it can only
check the provider-independent part (``--ignore-provider``); the libvirt provider's block
is checked for real through vagrant-libvirt and libvirt's built-in test driver
(``test:///default``, no daemon). VirtualBox cannot be installed from Debian, so its block
is parsed but not validated here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
VAGRANT_DIR = PROJECT / "vagrant"

pytestmark = pytest.mark.skipif(shutil.which("vagrant") is None,
                                reason="needs vagrant (scripts/install installs it)")


def vagrant(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run vagrant on vagrant/Vagrantfile with its state kept in ``tmp_path``, not the project."""
    env = {**os.environ, "VAGRANT_CWD": str(VAGRANT_DIR), "VAGRANT_HOME": str(tmp_path / "home"),
           "VAGRANT_DOTFILE_PATH": str(tmp_path / "dot"), "VAGRANT_CHECKPOINT_DISABLE": "1", **env}
    return subprocess.run(["vagrant", *args], capture_output=True, text=True, env=env, timeout=120)


def test_vagrantfile_validates(tmp_path):
    result = vagrant(tmp_path, "validate", "--ignore-provider")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validated successfully" in result.stdout


def test_libvirt_provider_settings_validate(tmp_path):
    plugins = vagrant(tmp_path, "plugin", "list").stdout
    if "vagrant-libvirt" not in plugins:
        pytest.skip("needs vagrant-libvirt (scripts/install installs it)")
    result = vagrant(tmp_path, "validate", VAGRANT_DEFAULT_PROVIDER="libvirt",
                     LIBVIRT_DEFAULT_URI="test:///default")
    assert result.returncode == 0, result.stdout + result.stderr


def test_provisioning_is_the_readme_install_step():
    """One install path: the VM runs scripts/install from the synced project, as the README's
    run command does (the test suite's extras come with ``--test``, as in its test command)."""
    vagrantfile = (VAGRANT_DIR / "Vagrantfile").read_text()
    readme = (PROJECT / "README.md").read_text()
    assert re.search(r'provision "install", type: "shell", inline: "/vagrant/scripts/install"', vagrantfile)
    assert re.search(r'synced_folder PROJECT, "/vagrant"', vagrantfile)
    assert 'PROJECT = File.expand_path("..", __dir__)' in vagrantfile
    assert "    sudo scripts/install && sudo .venv/bin/python -m edgetestbed run" in readme
