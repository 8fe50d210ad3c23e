//! The texts of `help TOPIC` (borg's `patterns`, `placeholders`, `compression` topics),
//! written for hoard and covering what borg 1.4's topics cover.

/// The topic names, in the order `help` lists them.
pub const TOPICS: &[&str] = &["compression", "patterns", "placeholders"];

/// The text of a help topic, if `name` is one.
pub fn topic(name: &str) -> Option<&'static str> {
    match name {
        "patterns" => Some(PATTERNS),
        "placeholders" => Some(PLACEHOLDERS),
        "compression" => Some(COMPRESSION),
        _ => None,
    }
}

const PATTERNS: &str = r#"
Patterns select which paths `create`, `extract`, `list`, `diff`, `export-tar` and
`recreate` work on. They are matched against archived paths, which start at the
recursion root you named on the command line:

- Archived paths never start with '/', '.' or '..'.
  - Backing up /home/user archives paths starting with home/user.
  - Backing up ./src or ../../src archives paths starting with src.
- With the "slashdot hack" (/this/is/stripped/./this/is/kept) patterns still
  match the whole path, here this/is/stripped/this/is/kept.

A directory exclusion that ends with '/' (some/path/) keeps the directory but
not its contents; without the slash (some/path) both are excluded.

Each pattern has a style. Choose one other than the default by prefixing the
pattern with its two-letter selector and a colon (fm:path/*, sh:path/**).
--exclude and --exclude-from default to fm:, --pattern and --patterns-from
to sh:.

Fnmatch, selector fm: (default for --exclude and --exclude-from)
    Shell-like wildcards: '*' matches any number of characters, '?' one
    character, '[...]' one character of a set or range and '[!...]' one
    character not in it. '/' is an ordinary character here, so '*' crosses
    directory levels. Put a wildcard in brackets to match it literally ([?]).
    The pattern must match the whole path, or the path up to just before a
    '/'. A pattern ending in '/' gets a '*' appended; a leading '/' is dropped.

Shell-style, selector sh: (default for --pattern and --patterns-from)
    Like fnmatch, but '*' does not cross a '/', while '**/' matches any
    number of directory levels (including none). A leading '/' is dropped.

Regular expressions, selector re:
    Perl-like regular expressions (Python's re syntax). A match anywhere in
    the path counts, so anchor with '^' and '$' where you mean the start or
    the end. Paths use '/' as separator on every platform.

Path prefix, selector pp:
    Matches a path and everything below it: pp:root/somedir matches
    root/somedir and all it contains. A leading '/' is dropped.

Path full-match, selector pf:
    Matches exactly one full path, without wildcards: pf:root/file.ext
    matches root/file.ext and nothing else. A leading '/' is dropped.
    These are looked up in a hash table, so any number of them is cheap,
    but for that reason they ignore order: a pf: include always includes,
    a pf: exclude always excludes, whatever other patterns say.

Note:
    fm:, sh: and re: patterns can be written so that matching takes a very
    long time. Do not accept re: patterns from untrusted users, and keep the
    number of wildcards in sh: and fm: patterns small.

Excludes are given with --exclude (quote them, so the shell does not expand
them). Patterns that contain white space need quoting on a shell command line,
e.g. --pattern='-path/item name'; in a file read with --exclude-from or
--patterns-from no quoting is needed.

--exclude-from FILE reads one exclusion per line. Lines that are empty or start
with '#' (after stripping white space at both ends) are skipped; style
selectors work as on the command line. Because of the stripping, a path that
begins or ends with white space can only be excluded with a re: pattern.

Try your patterns without writing an archive: create --list --dry-run ....

Examples:

    # Exclude every directory named steamapps/common, wherever it is:
    $ hoard create -e 'sh:**/steamapps/common/**' backup /

    # Exclude the contents of /home/user/.cache (two ways):
    $ hoard create -e 'sh:home/user/.cache/**' backup /home/user
    $ hoard create -e home/user/.cache/ backup /home/user

    # /home/user/.cache/important is not backed up either, the exclude wins:
    $ hoard create -e home/user/.cache/ backup / /home/user/.cache/important

    # Exclude /home/user/file.o but keep /home/user/file.odt:
    $ hoard create -e '*.o' backup /

    # Exclude /home/user/junk and /home/user/subdir/junk, keep
    # /home/user/importantjunk and /etc/junk:
    $ hoard create -e 'home/*/junk' backup /

    # Skip the contents of directories in /home whose name ends in .tmp:
    $ hoard create --exclude 're:^home/[^/]+\.tmp/' backup /

    # Exclusions from a file:
    $ cat >exclude.txt <<EOF
    # a comment
    home/*/junk
    *.tmp
    fm:aa:something/*
    re:^home/[^/]+\.tmp/
    sh:home/*/.thumbnails
    a file name with spaces.txt
    EOF
    $ hoard create --exclude-from exclude.txt backup /

--pattern and --patterns-from are the more general form: besides includes and
excludes they can set the recursion roots and the default style. Each line or
option value starts with a prefix:

Root path, prefix R
    A recursion root (a plain path, not a pattern), so the roots can live in
    the patterns file instead of on the command line.

Pattern style, prefix P (useful in patterns files)
    Sets the default style (fm, pf, pp, re, sh) for the following lines of
    the same file, until the next P line or the end of the file.

Exclude, prefix -
    An exclusion, as --exclude gives.

Exclude without recursing, prefix !
    An exclusion that also stops the walk from entering the directory. This
    is faster, but no include can then match anything below it.

Include, prefix +
    An inclusion: paths that would otherwise be excluded are backed up.

Note:
    With --pattern and --patterns-from you give both includes (+) and
    excludes (-); --exclude and --exclude-from only give excludes.

The first pattern that matches decides: an include that matches before an
exclude keeps the file. A ! exclusion stops the walk, so includes below it
never get a chance; use a plain - exclusion when you need them.

Example:

    # the recursion root
    R /
    # no iso files anywhere
    - **/*.iso
    # keep everything in etc and root
    + etc/**
    + root/**
    # leave out each user's cache
    - home/*/.cache
    # keep the rest of /home
    + home/**
    # do not even enter these
    ! re:^(dev|proc|run|sys|tmp)
    # and nothing else
    - **

Note:
    A file can be matched while its parent directories are not; the parents
    are then not archived, so their owner, group and mode cannot be restored.

Since --pattern and --patterns-from default to sh:, they behave much like
rsync's include/exclude rules; P changes the style.

Order of evaluation: --pattern and --exclude options from the command line
first, in the order given, then the lines of --patterns-from, and last the
exclusions of --exclude-from.

Examples:

    # pictures, but not those of 2018, except the good ones
    # (the = keeps the leading - from being read as an option):
    hoard create --pattern=+pics/2018/good --pattern=-pics/2018 repo::arch pics

    # patterns from a file:
    hoard create --patterns-from patterns.lst repo::arch

A patterns.lst could read:

    # sh: is already the default style
    P sh
    R /
    # can be rebuilt
    - home/*/.cache
    # downloaded once, can be downloaded again
    - home/*/Downloads
    # susan's home is kept
    + home/susan
    # and this one file
    + pf:home/bobby/specialfile.txt
    # no other home directory
    - home/*
    # never look into /proc
    ! proc

Roots can be given on the command line or in the file; these two do the same:

    hoard create --exclude home/bobby/junk repo::arch /home/bobby /home/susan
    hoard create --patterns-from patternfile.lst repo::arch

with patternfile.lst:

    # excludes default to fm:, patterns files to sh:, so say fm: to match
    # the command line above exactly
    P fm
    R /home/bobby
    R /home/susan
    - home/bobby/junk

One patterns file can so be shared by several repositories.
"#;

const PLACEHOLDERS: &str = r#"
Repository and archive names (REPO::ARCHIVE), --prefix, --glob-archives,
--comment and --remote-path values may contain these placeholders:

{hostname}
    The short host name of this machine.

{fqdn}
    The fully qualified name of this machine.

{reverse-fqdn}
    The fully qualified name in reverse domain notation (org.example.host).

{now}
    The local date and time, ISO-8601 by default. A strftime format may
    follow a colon, e.g. {now:%Y-%m-%d_%H:%M:%S}.

{utcnow}
    The date and time in UTC, ISO-8601 by default; takes a format like
    {now}, e.g. {utcnow:%Y-%m-%d_%H:%M:%S}.

{user}
    The name of the user running the command (the numeric uid if it has
    no name).

{pid}
    The process id.

{borgversion}
    The borg version hoard is compatible with, e.g. 1.4.5.

{borgmajor}
    Only its major version, e.g. 1.

{borgminor}
    Only its major and minor version, e.g. 1.4.

{borgpatch}
    Its major, minor and patch version, e.g. 1.4.5.

Double a curly brace to write it literally:

    hoard create /path/to/repo::{{literal_text}}

Examples:

    hoard create /path/to/repo::{hostname}-{user}-{utcnow} ...
    hoard create /path/to/repo::{hostname}-{now:%Y-%m-%d_%H:%M:%S} ...
    hoard prune --glob-archives '{hostname}-*' ...

Note:
    systemd unit files have their own command line syntax (see
    systemd.unit(5)) and replace %-sequences even inside quotes. When you
    use {now} or {utcnow} with a format there, double every percent sign:
    {hostname}-{now:%Y-%m-%d_%H:%M:%S} becomes
    {hostname}-{now:%%Y-%%m-%%d_%%H:%%M:%%S}.
"#;

const COMPRESSION: &str = r#"
One repository can hold chunks compressed in different ways: deduplication
works on the chunks' plain data, not on their compressed or encrypted form.

A chunk is compressed once, when it is first stored. A later backup that
contains the same chunk reuses it as it is, whatever --compression it gives;
so the first backup to store a chunk decides its compression. `recreate
--recompress` changes it afterwards.

The default is lz4. Any other method must be asked for.

The compression specifiers:

none
    No compression.

lz4
    lz4: very fast, compresses little. (default)

zstd[,L]
    zstd (Zstandard), a modern algorithm that covers a wide range of speed
    and ratio. Level L is 1 to 22, default 3. borg before 1.1.4 cannot read
    zstd-compressed archives.

zlib[,L]
    zlib (as gzip): medium speed, medium ratio. Level L is 0 to 9, default
    6. Level 0 stores the data uncompressed inside zlib framing, so "none"
    is the better choice.

lzma[,L]
    lzma (as xz): slow, compresses well. Level L is 0 to 9, default 6.
    Levels above 6 cost much CPU time and memory without compressing
    better, because of the chunk sizes used.

auto,C[,L]
    Decides per chunk: a quick lz4 trial tells whether the data compresses.
    If it does not, the chunk is stored uncompressed ("none"); if it does,
    it is compressed with C[,L], any of the specifiers above. Useful for
    already compressed media files.

obfuscate,SPEC,C[,L]
    Compresses with C[,L], then hides the compressed size from anyone who
    sees the stored chunk sizes (fingerprinting). Keep in mind:

    - it only makes sense together with encryption;
    - the repository grows;
    - a chunk cannot exceed MAX_DATA_SIZE (about 20 MiB).

    SPEC chooses how the size is changed:

    Random reciprocal factor (multiplicative), SPEC 1 to 6
    The size grows by a random factor of the compressed size; small factors
    are common, large ones rare. Ranges:

      1:     0.01 ..        100
      2:     0.1  ..      1,000
      3:     1    ..     10,000
      4:    10    ..    100,000
      5:   100    ..  1,000,000
      6: 1,000    .. 10,000,000

    For SPEC 1 the factor falls into these ranges with these odds:

      90   %  0.01 ..   0.1
       9   %  0.1  ..   1
       0.9 %  1    ..  10
       0.09% 10    .. 100

    Random padding (additive), SPEC 110 to 123
    Adds up to 2 ^ (SPEC - 100) bytes of padding:

      110: 1 KiB
      ...
      120: 1 MiB
      ...
      123: 8 MiB (the largest)

    Padme padding (deterministic), SPEC 250
    Pads the compressed size up to a value of the Padme scheme (a sum of
    powers of 2), at most 12% larger. See https://lbarman.ch/blog/padme/.

Examples:

    hoard create --compression lz4 REPO::ARCHIVE data
    hoard create --compression zstd REPO::ARCHIVE data
    hoard create --compression zstd,10 REPO::ARCHIVE data
    hoard create --compression zlib REPO::ARCHIVE data
    hoard create --compression zlib,1 REPO::ARCHIVE data
    hoard create --compression auto,lzma,6 REPO::ARCHIVE data
    hoard create --compression auto,lzma ...
    hoard create --compression obfuscate,110,none ...
    hoard create --compression obfuscate,3,auto,zstd,10 ...
    hoard create --compression obfuscate,2,zstd,6 ...
    hoard create --compression obfuscate,250,zstd,3 ...
"#;
