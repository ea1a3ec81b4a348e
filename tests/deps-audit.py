#!/usr/bin/env python3
"""The package audit: every file that the build and the tests opened or ran
must come from a Debian package that `make deps` installs, directly or as a
dependency, or from the base system (what `debootstrap --variant=minbase`
installs: Essential and Priority: required packages, and apt).

This catches a missing install step on a machine where the package happens to
be installed by hand: the machine's dpkg database says which package a file
belongs to, the Makefile's lists say which packages a fresh machine gets.

Input: strace logs (execve and open* calls that succeeded, -f), one per test,
and two of a scratch build that `make check` runs here: the build itself
(checked against DEPS_BUILD, so `make run` works with those alone) and the
unit test programs (against both lists).

Usage: deps-audit.py TRACE_DIR   (environment: XT_DEPS_BUILD, XT_DEPS_TEST)
TRACE_DIR/build.trace is checked against DEPS_BUILD, every other *.trace
against DEPS_BUILD + DEPS_TEST.
"""
import functools
import glob
import os
import re
import subprocess
import sys

# Never package files, or made at run time.
SKIP_PREFIXES = ('/proc/', '/sys/', '/dev/', '/run/', '/tmp/', '/var/tmp/',
                 '/var/lib/', '/var/cache/', '/var/log/')
# Read when present, harmless when absent, so no package needs them: NSS
# modules (/etc/nsswitch.conf names them), locale data, the linker's walk of
# /etc/ld.so.conf.d (other packages' snippets), and clang's probe for a CUDA
# installation (it reads cuda.h for the version, to offer CUDA).
OPTIONAL_RE = re.compile(r'(/libnss_[^/]*\.so[.0-9]*|^/usr/share/locale/.*|^/usr/lib/locale/.*'
                         r'|^/etc/ld\.so\.conf\.d/.*'
                         r'|^/usr/local/cuda[^/]*/(include/cuda\.h|version\.(txt|json)))$')
# Python reads every .pth file in its site directories at start, and a .pth
# may import its package (setuptools' _distutils_hack): such a package's
# files are optional too, as is any .pth.
PTH_RE = re.compile(r'\.pth$')
# Files here never come from a Debian package.
FOREIGN_PREFIXES = ('/usr/local/', '/opt/', '/root/', '/home/', '/snap/', '/nix/')

TRACE_RE = re.compile(
    r'^(\d+)\s+(?:<\.\.\. )?(execve|execveat|open|openat|openat2)'
    r'(?: resumed>)?\((?:AT_FDCWD, )?"((?:[^"\\]|\\.)*)"')


@functools.lru_cache(maxsize=None)
def realdir(d):
    return os.path.realpath(d)


def canon(path):
    """The path with its directory's symlinks resolved (merged /usr: dpkg
    says /bin/bash, a process opens /usr/bin/bash)."""
    d, b = os.path.split(path)
    return os.path.join(realdir(d), b)


def owners_index():
    own = {}
    for lst in glob.glob('/var/lib/dpkg/info/*.list'):
        pkg = os.path.basename(lst)[:-len('.list')].split(':')[0]
        with open(lst, encoding='utf-8', errors='surrogateescape') as f:
            for line in f:
                p = line.rstrip('\n')
                if p and p != '/.':
                    own.setdefault(canon(p), set()).add(pkg)
    return own


def installed_packages():
    """name -> (essential_or_required, provides, [[alternatives], ...])"""
    fmt = ('${Package}\t${db:Status-Abbrev}\t${Essential}\t${Priority}\t'
           '${Provides}\t${Pre-Depends}, ${Depends}\n')
    out = subprocess.run(['dpkg-query', '-W', '-f', fmt], check=True,
                         capture_output=True, text=True).stdout
    pkgs, providers = {}, {}

    def names(field):
        return [re.sub(r'[:\s(].*', '', a.strip()) for a in field.split('|')]

    for line in out.splitlines():
        name, status, ess, prio, prov, deps = line.split('\t')
        if not status.startswith('ii'):
            continue
        groups = [names(g) for g in deps.split(',') if g.strip()]
        base = ess == 'yes' or prio == 'required'
        old = pkgs.get(name)	# one line per architecture: merge
        if old:
            base = base or old[0]
            groups = old[1] + groups
        pkgs[name] = (base, groups)
        for v in prov.split(','):
            v = re.sub(r'[:\s(].*', '', v.strip())
            if v:
                providers.setdefault(v, set()).add(name)
    return pkgs, providers


def closure(roots, pkgs, providers):
    """roots and what they depend on, as apt would have chosen it: the first
    alternative of an OR group that is installed here."""
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p in seen or p not in pkgs:
            continue
        seen.add(p)
        for group in pkgs[p][1]:
            for alt in group:
                if alt in pkgs:
                    todo.append(alt)
                    break
                if alt in providers:
                    todo.extend(providers[alt])
                    break
    return seen


def unescape(s):
    return s.encode('latin-1', 'backslashreplace').decode('unicode_escape')


def trace_files(path):
    """(file, program that opened it) for every absolute path in a trace."""
    prog = {}
    with open(path, encoding='utf-8', errors='surrogateescape') as f:
        for line in f:
            m = TRACE_RE.match(line)
            if not m:
                continue
            pid, call, p = m.group(1), m.group(2), unescape(m.group(3))
            if call.startswith('exec'):
                prog[pid] = p
            if p.startswith('/'):
                yield p, prog.get(pid, '?')


def pyc_source(p):
    """A .pyc written at install time is nobody's; its .py is."""
    m = re.match(r'(.*)/__pycache__/([^/.]+)\.[^/]*\.pyc$', p)
    return f'{m.group(1)}/{m.group(2)}.py' if m else None


def main():
    tdir = sys.argv[1]
    deps_build = os.environ.get('XT_DEPS_BUILD', '').split()
    deps_test = os.environ.get('XT_DEPS_TEST', '').split()
    if not deps_build or not deps_test:
        sys.exit('deps-audit: XT_DEPS_BUILD and XT_DEPS_TEST must name the packages')
    traces = sorted(glob.glob(os.path.join(tdir, '*.trace')))
    if not traces:
        sys.exit(f'deps-audit: no traces in {tdir}')

    own = owners_index()
    pkgs, providers = installed_packages()
    for p in deps_build + deps_test:
        if p not in pkgs:
            sys.exit(f'deps-audit: {p} is in the deps lists but not installed')
    base_roots = [p for p, (b, _) in pkgs.items() if b] + ['apt']
    base = closure(base_roots, pkgs, providers)
    allowed_build = base | closure(deps_build, pkgs, providers)
    allowed_test = allowed_build | closure(deps_test, pkgs, providers)
    repo = os.path.realpath(os.path.join(os.path.dirname(__file__), '..'))

    files = {t: list(trace_files(t)) for t in traces}
    pth_pkgs = set()
    for t in traces:
        for p, _ in files[t]:
            if PTH_RE.search(p):
                pth_pkgs |= own.get(canon(p), set())

    missing = {}	# package -> (file, program, trace)
    foreign = {}	# file -> (program, trace)
    used = set()
    nfiles = 0
    for t in traces:
        tname = os.path.basename(t)[:-len('.trace')]
        allowed = allowed_build if tname == 'build' else allowed_test
        for p, prog in files[t]:
            if (p.startswith(SKIP_PREFIXES) or p.startswith(repo + '/') or
                    OPTIONAL_RE.search(p) or PTH_RE.search(p)):
                continue
            nfiles += 1
            keys = {canon(p)}
            if os.path.exists(p):
                if os.path.isdir(p):
                    continue
                keys.add(os.path.realpath(p))
            src = pyc_source(p)
            if src:
                keys.add(canon(src))
            who = set().union(*(own.get(k, set()) for k in keys))
            if not who:
                if any(k.startswith(FOREIGN_PREFIXES) for k in keys):
                    foreign.setdefault(p, (prog, tname))
                continue	# made at run time (ld.so.cache, caches, ...)
            used |= who
            if who <= pth_pkgs and 'python' in os.path.basename(prog):
                continue
            if not who & allowed:
                for pkg in who:
                    missing.setdefault(pkg, (p, prog, tname))

    listed = set(deps_build + deps_test)
    print(f'deps-audit: {len(traces)} traces, {nfiles} system files opened, '
          f'{len(used)} packages; base system {len(base)} packages')
    unused = sorted(p for p in listed if p not in used)
    if unused:
        print('note: listed, but none of their own files was opened:', ' '.join(unused))
    bad = False
    for pkg, (p, prog, tname) in sorted(missing.items()):
        where = 'DEPS_BUILD' if tname == 'build' else 'DEPS_BUILD or DEPS_TEST'
        print(f'MISSING: package {pkg} is not installed by make deps ({where}, or '
              f'their dependencies): {prog} opened {p} in {tname}')
        bad = True
    for p, (prog, tname) in sorted(foreign.items()):
        print(f'FOREIGN: {p} is not from a Debian package: opened by {prog} in {tname}')
        bad = True
    if bad:
        sys.exit(1)
    print('deps-audit: every file came from a listed package or the base system')


if __name__ == '__main__':
    main()
