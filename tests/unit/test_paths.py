import pytest

from objsync.paths import Filter, UnsafeKey, check_relative, normalize_prefix, parents, relative_path, split_patterns


@pytest.mark.parametrize("given, expected", [("", ""), ("p", "p/"), ("p/", "p/"), ("/p/q", "p/q/")])
def test_prefix_is_a_folder(given, expected):
    assert normalize_prefix(given) == expected


def test_sibling_of_prefix_is_outside():
    with pytest.raises(UnsafeKey, match="outside the prefix"):
        relative_path("p/dags_old/x.py", normalize_prefix("p/dags"))
    assert relative_path("p/dags/x.py", normalize_prefix("p/dags")) == "x.py"


@pytest.mark.parametrize("rel, why", [
    ("../x", "'..'"), ("a/../../x", "'..'"), ("a/./b", "'.'"), ("/etc/passwd", "leading"),
    ("a//b", "empty path segment"), ("a\x00b", "control"), ("a\nb", "control"), ("a\x7fb", "control"),
    ("a\\b", "backslash"), ("x" * 256, "over 255"), ("/".join(["d" * 200] * 21), "over the limit"),
    (".objsync/cache", "reserved"), ("", "empty"), ("a\udcff", "UTF-8"),
    ("a\x85b", "control"), ("a\x9bb", "control"), ("a\x1b[2Jb", "control"), ("bad\ufffd.py", "U\\+FFFD"),
])
def test_unsafe_relative_paths(rel, why):
    with pytest.raises(UnsafeKey, match=why):
        check_relative(rel)


@pytest.mark.parametrize("rel", ["a.py", "dir/sub/b.py", ".airflowignore", "x/.objsync/ok", "ünï/çödé.py",
                                 "a..b", "...", "x" * 255, "\uff0e\uff0e/x", "%2e%2e/x", "\u2215etc",
                                 "-rf", "C:/x", "sp ace+plus", "rlo\u202eyp.txt"])
def test_ordinary_paths_are_accepted(rel):
    check_relative(rel)


def test_parents():
    assert parents("a/b/c") == ["a", "a/b"]
    assert parents("c") == []


def test_split_patterns_accepts_repeats_and_commas():
    assert split_patterns(["a/**, *.pyc", "b", ""]) == ("a/**", "*.pyc", "b")


def test_doublestar_semantics():
    f = Filter(excludes=("foo/**", "**/*.pyc"))
    assert not f.selects("foo")          # a directory pattern also covers the directory itself
    assert not f.selects("foo/a/b.py")
    assert not f.selects("x/y/z.pyc")
    assert not f.selects("z.pyc")
    assert f.selects("foobar/a.py")
    assert f.selects("x/y/z.py")


def test_single_star_does_not_cross_slash():
    f = Filter(excludes=("*.py",))
    assert not f.selects("a.py")
    assert f.selects("dir/a.py")
    assert not Filter(excludes=("*.py",)).selects(".hidden.py")


def test_includes_then_excludes():
    f = Filter(includes=("**/*.py",), excludes=("tests/**",))
    assert f.selects("dags/a.py")
    assert not f.selects("dags/a.txt")
    assert not f.selects("tests/test_a.py")
