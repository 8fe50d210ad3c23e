//! The long descriptions and examples shown by `hoard CMD --help` (and in the man pages).
//! They state what borg 1.4's help states, in hoard's own words; `-h` shows only the summary.

/// The compression methods and levels `-C/--compression` accepts (create, recreate, import-tar).
macro_rules! compression_text {
    () => {
        r#"Compression methods and levels (-C/--compression SPEC):
  none            no compression
  lz4             very fast, modest ratio; the default
  zstd[,L]        zstandard, L from 1 to 22 (3 when omitted); wide speed/ratio range
  zlib[,L]        gzip's deflate, L from 0 to 9 (6 when omitted); medium speed and
                  ratio (level 0 only adds overhead: use "none" instead)
  lzma[,L]        xz, L from 0 to 9 (6 when omitted); slow, high ratio; levels above 6
                  cost much CPU time and memory without compressing better
  auto,C[,L]      try lz4 on each chunk first: data that lz4 cannot shrink is stored
                  uncompressed, anything else is compressed with C[,L] (handy for media
                  files mixed with text)
  obfuscate,SPEC,C[,L]
                  compress with C[,L], then add padding so that stored sizes reveal
                  less about the content (only useful with encryption; costs space):
                  SPEC 1..6    multiply the size by a random factor, mostly small,
                               rarely large (1: 0.01..100, each step x10, up to
                               6: 1000..10,000,000)
                  SPEC 110..123  add random padding of up to 2^(SPEC-100) bytes
                               (110: 1 KiB, 120: 1 MiB, 123: 8 MiB)
                  SPEC 250     Padme: pad deterministically to a sum of powers of two
                               (at most 12% overhead)

  Methods may be mixed in one repository: deduplication works on the uncompressed
  chunks, and a chunk keeps the compression it was first stored with. A new -C only
  affects chunks that are new to the repository (use `recreate --recompress` to change
  existing ones)."#
    };
}

/// Common text about archive-selection options, used by several commands.
macro_rules! archive_filter_text {
    () => {
        r#"Archive filters:
  When a repository (not a single archive) is given, -a/--glob-archives GLOB selects the
  archives whose names match the shell-style GLOB (-P/--prefix PREFIX is the older, deprecated
  way of saying -a 'PREFIX*'). --sort-by orders the selection (timestamp, name, id; default
  timestamp), then --first N / --last N keep only the first or last N of it. Placeholders
  such as {hostname} work in GLOB and PREFIX."#
    };
}

/// `init`
pub const INIT: &str = r#"Description:
  Sets up a new, empty repository: a directory (local, or remote through ssh://) that will
  hold the deduplicated data of any number of archives.

  The encryption mode is chosen once, here, and cannot be changed later (neither per
  archive nor for the whole repository), so pick it with future use in mind. For most
  people a repokey mode with a strong passphrase is the right choice.

Encryption modes (-e/--encryption MODE):
  repokey, repokey-blake2     the encrypted key lives in the repository's config file;
                              the passphrase unlocks it
  keyfile, keyfile-blake2     the encrypted key lives in a file under ~/.config/borg/keys
                              (BORG_KEYS_DIR) on the client, never in the repository
  authenticated, authenticated-blake2
                              no encryption, but every object carries a MAC so tampering
                              is detected (the key is kept as with repokey)
  none                        neither encryption nor authentication (not recommended)

  The -blake2 variants use BLAKE2b-256 instead of HMAC-SHA256 for chunk ids and MACs;
  that is faster on CPUs without SHA-256 instructions. Data is encrypted with AES-256-CTR,
  which modern CPUs accelerate in hardware; hoard uses such acceleration when present.

  For a new key, hoard asks for a passphrase (or reads BORG_NEW_PASSPHRASE), makes three
  random secrets (encryption key, MAC key, chunker seed), encrypts them with a key derived
  from the passphrase and stores the result in the repository or in the key file. You
  need both the key and the passphrase to read your data, so keep a copy of the key away
  from both the repository and the machine you back up (see `hoard key export`).

  Encryption happens on the client: a remote server never sees your passphrase, your key
  or your plain files. Chunk boundaries and chunk ids also depend on the key.

Passphrase:
  Use a long passphrase that you use nowhere else. It protects the key: whoever gets the
  key file or the repository config still cannot use the key without it. Scripts can
  supply it through BORG_PASSPHRASE, BORG_PASSCOMMAND or BORG_PASSPHRASE_FD.

Other options:
  --append-only only changes the low-level behaviour of the repository (old transactions
  are never overwritten); `delete` and `prune` are still accepted. --storage-quota limits
  how large the repository may grow (e.g. 5G, 1.5T; powers of 1000; at least 10M).
  --import-related-secrets PATH takes the id key and chunker seed from a file written by
  `hoard key export-related-secrets`, so that the new repository deduplicates against the
  other one (borg 1.4's preparation for transfers into borg 2).

Examples:
  # local repository, key kept in the repository (a good default)
  $ hoard init --encryption=repokey /path/to/repo

  # remote repository over ssh, BLAKE2b variant
  $ hoard init --encryption=repokey-blake2 ssh://user@host/./backup

  # key kept only on this machine
  $ hoard init --encryption=keyfile /path/to/repo

  # no encryption (not recommended)
  $ hoard init --encryption=none /path/to/repo
"#;

/// `create`
pub const CREATE: &str = concat!(
    r#"Description:
  Makes a new archive from the given PATHs, walking directories recursively. Paths are
  stored as given, so to store relative paths, run hoard from the directory they are
  relative to. A path containing "/./" stores only what follows it: backing up
  /srv/data/./www/site stores the items as www/site/...

  Data already present in the repository (from earlier archives or other files) is not
  stored again, so an archive of mostly unchanged files takes almost no space.

  The archive name must be unique in the repository and must not end in ".checkpoint" or
  ".checkpoint.N" (those names mark checkpoints). Placeholders such as {hostname}, {now},
  {utcnow}, {fqdn} and {user} are replaced in the name and in --comment.

Reading from stdin:
  PATH "-" stores what comes on standard input as a file named "stdin" (see --stdin-name,
  --stdin-user, --stdin-group, --stdin-mode). With --content-from-command, the first PATH
  and the following arguments are a command whose output is stored instead; unlike a
  pipe, a failing command (non-zero exit) then makes hoard fail without an archive.
  Put "--" before the command so its options are not taken as hoard's. The files cache is
  not needed for stdin data; --files-cache=disabled saves a little time.

  --paths-from-stdin reads the list of paths to back up from stdin (separated by
  --paths-delimiter, default newline) and --paths-from-command from a command's output.
  Nothing is recursed into or excluded then: exactly the given paths are stored.

Files cache:
  Unchanged files are recognised without reading them again by comparing their metadata
  with the values remembered in the files cache. --files-cache MODE selects what is
  compared:
    ctime,size,inode   the default
    mtime,size,inode   what borg before 1.1.0rc4 did
    ctime,size         ignore the inode number
    mtime,size         ignore the inode number
    rechunk,ctime      treat every file as changed, but remember ctime
    rechunk,mtime      treat every file as changed, but remember mtime
    disabled           do not use the files cache at all
  Inode numbers make the check safer but are unstable on some network file systems
  (sshfs and the like), where every file would look changed; leave them out there.
  ctime cannot be set by users, so it is the safer choice; mtime can be reset to an old
  value after the content changed, and a file with such an mtime would be missed.
  The cache is keyed by absolute path: keep the mount point of a file system or snapshot
  the same from run to run (a bind mount helps), or every file will look new.

  A file that changes while it is being read is noticed by its ctime and reported with
  status "C" (borg 1.4.5's --files-changed to choose mtime or no detection is not offered;
  ctime is its default).

Output:
  --progress shows the original, compressed and deduplicated sizes (O, C, D), the number of
  files (N) and the current path. On a terminal (with or without --progress) one line shows
  the share done, the rate and the time to go; the total is estimated ("~") from the
  previous archive whose name shares this one's stem and corrected as the walk goes.
  --stats prints statistics at the end; "This archive / Deduplicated size" is how much the
  repository grew. --stats takes time for the repository-wide totals; --quick-stats leaves
  them out. Neither goes with --dry-run.

Include/exclude:
  See `hoard help patterns` for pattern syntax and `hoard help placeholders` for
  placeholders. Unlike tar, --exclude .bundler/gems matches only that path from the
  top; to match it at any depth use --exclude '*/.bundler/gems'. --exclude-if-present NAME
  leaves out every directory that contains an entry called NAME; with --keep-exclude-tags
  the tag entries themselves are kept. --exclude-caches leaves out directories holding a
  valid CACHEDIR.TAG.

  -x/--one-file-system does not descend into directories whose device number differs from
  their parent's. That is not exactly "mount points": bind mounts can share the device
  number, btrfs subvolumes have their own without being mounts, so check that the result
  is what you expect.

Errors:
  A file or directory that cannot be read is reported as a warning and skipped; the backup
  goes on and hoard ends with exit code 1 (warning). Read the warnings to make sure that
  nothing important is missing.

Item flags (--list, --filter):
  --list prints one line per item considered, prefixed by a status letter; --filter=AME
  shows only the letters given. Upper case is a regular file, compared with the files
  cache (not with the repository):
    A added    M modified    U unchanged    C changed while being read    E read error
  Lower case is another kind of item (only its metadata is stored):
    d directory  b block device  c char device  h hard link  s symlink  f fifo
  Others: i read from stdin, - dry run (not stored), x excluded, ? unknown (a bug).

"#,
    compression_text!(),
    r#"

Chunker parameters (--chunker-params):
  buzhash,CHUNK_MIN_EXP,CHUNK_MAX_EXP,HASH_MASK_BITS,HASH_WINDOW_SIZE (default
  buzhash,19,23,21,4095: chunks of 512 KiB to 8 MiB, about 2 MiB on average) or
  fixed,BLOCK_SIZE[,HEADER_SIZE] for block devices and VM images ("default" means the
  buzhash default). Changing them makes new chunks not deduplicate against old ones.

Examples:
  # back up ~/Documents into an archive named "docs"
  $ hoard create /path/to/repo::docs ~/Documents

  # same, listing every file and printing statistics at the end
  $ hoard create --list --stats /path/to/repo::docs ~/Documents

  # whole system, leaving out some directories and a file type
  $ hoard create -v --stats -C zstd,10 /path/to/repo::'{hostname}-{now}' / \
        --exclude /proc --exclude /sys --exclude /tmp --exclude '*.pyc'

  # home directory, skipping caches that carry a CACHEDIR.TAG
  $ hoard create --exclude-caches /path/to/repo::home-{now} /home/user

  # a raw disk image, fixed-size chunks, reading the device itself
  $ hoard create --read-special --chunker-params fixed,4194304 /path/to/repo::disk /dev/sdX

  # a database dump through a command (fails without an archive if pg_dump fails)
  $ hoard create --content-from-command /path/to/repo::db -- pg_dump mydb

  # a stream on stdin, stored as the file "vm.img"
  $ backup-vm --stdout | hoard create --stdin-name vm.img /path/to/repo::vm -

  # paths produced by find, separated by NUL
  $ find /srv -newer /var/run/last -print0 | \
        hoard create --paths-from-stdin --paths-delimiter '\0' /path/to/repo::incr

  # only the tail of the path after /./ is stored (items appear as "site/...")
  $ hoard create /path/to/repo::www /srv/www/./site

  # give the archive a date in the past (UTC)
  $ hoard create --timestamp 2024-01-31T12:00:00 /path/to/repo::old /data

  # fast, uncompressed, and without the repository totals
  $ hoard create -C none --quick-stats /path/to/repo::quick /data
"#
);

/// `extract`
pub const EXTRACT: &str = r#"Description:
  Restores the contents of an archive into the current directory. Change to the target
  directory first: extract always writes below ".".

  Without PATHs the whole archive is restored. PATHs select a subset; they are literal
  path prefixes (pp: style) unless another style is given, e.g. 'sh:home/*/Documents' or
  'fm:*.jpg' (see `hoard help patterns`). --exclude and the other pattern options narrow
  the selection further.

  --dry-run does everything except writing: it reads, checks, decrypts and decompresses
  the data, which makes it a thorough test of an archive. --progress needs one more pass
  over the archive metadata, so it can make extraction slower.

  Directories that are not extracted themselves (because only items below them were
  selected) get default metadata, not the owner, group and mode stored in the archive.

Examples:
  # restore the whole archive
  $ hoard extract /path/to/repo::my-files

  # only check that everything could be restored
  $ hoard extract --dry-run --list /path/to/repo::my-files

  # restore part of it, leaving out some files
  $ hoard extract /path/to/repo::my-files home/USERNAME/src --exclude '*.o'

  # restore with a shell-style pattern
  $ hoard extract /path/to/repo::my-files 'sh:home/*/Documents'

  # write one file's contents to stdout
  $ hoard extract --stdout /path/to/repo::my-sdx dev/sdx > /dev/sdx

  # drop the leading "home/user" from the restored paths
  $ hoard extract --strip-components 2 /path/to/repo::my-files home/user/src
"#;

/// `list`
pub const LIST: &str = concat!(
    r#"Description:
  Without an archive, lists the archives in the repository (one line each: name, time,
  id). With REPO::ARCHIVE, lists the items in that archive; PATHs and the pattern options
  restrict the listing (see `hoard help patterns`).

Format (--format FORMAT):
  FORMAT is a template in Python's str.format syntax: {key} inserts a value, {key:20}
  pads it to 20 columns (text left-aligned, numbers right-aligned), {key:<20} and
  {key:>20} choose the alignment. Times other than isomtime/isoctime/isoatime cannot be
  padded. The defaults are
    archives: "{archive:<36} {time} [{id}]{NL}"
    items:    "{mode} {user:6} {group:6} {size:8} {mtime} {path}{extra}{NL}"
  Keys available everywhere: NEWLINE and NL (a line break), NUL (for xargs -0), SPACE,
  TAB, CR, LF.
  Keys for archives: archive and name (the name as text), barchive (the exact name), comment,
  bcomment, id, tam (authentication state), start and time, end, command_line, hostname,
  username.
  Keys for items: type, mode, uid, gid, user, group, path, bpath (the exact path), source
  and linktarget, flags, size, csize, dsize, dcsize, num_chunks, unique_chunks, mtime,
  ctime, atime,
  isomtime, isoctime, isoatime, blake2b, blake2s, md5, sha1, sha224, sha256, sha384,
  sha3_224, sha3_256, sha3_384, sha3_512, sha512, xxh64 (not cryptographic), archiveid,
  archivename, extra (" -> TARGET" for symlinks, " link to TARGET" for hard links), health
  ("broken" when the file has zero-filled replacement chunks, else "healthy").

  --json (archives) and --json-lines (items) ignore the layout of --format but add the
  keys it names to each object. JSON holds only text, so barchive and bpath are not
  available there.

"#,
    archive_filter_text!(),
    r#"

Examples:
  # archives in a repository
  $ hoard list /path/to/repo

  # items of one archive
  $ hoard list /path/to/repo::root-2016-02-15

  # only the names of the archives, one per line
  $ hoard list --short /path/to/repo

  # the last 5 archives whose name starts with the host name
  $ hoard list -a '{hostname}-*' --last 5 /path/to/repo

  # item listing in a custom layout
  $ hoard list --format '{mode} {user:6} {group:6} {size:8d} {isomtime} {path}{extra}{NL}' \
        /path/to/repo::archive

  # archive names separated by NUL, for xargs -0
  $ hoard list --format '{archive}{NUL}' /path/to/repo | xargs -0 -n1 echo

  # items under one directory, as JSON Lines
  $ hoard list --json-lines /path/to/repo::archive home/user/src
"#
);

/// `info`
pub const INFO: &str = concat!(
    r#"Description:
  Shows details about a repository (location, encryption, cache, space used by all
  archives) or, with REPO::ARCHIVE or archive filters, about archives (name, id, times,
  command line, sizes, number of files).

  The deduplicated size of one archive counts only the chunks no other archive uses, so
  the per-archive figures do not add up to the repository's "All archives" deduplicated
  size, which counts every chunk once.

  An archive's metadata has a size limit; "Utilization of max. archive size" shows how
  much of it an archive uses (it grows mainly with the number of files and path lengths).

"#,
    archive_filter_text!(),
    r#"

Examples:
  # one archive
  $ hoard info /path/to/repo::2017-06-29T11:00-srv

  # the whole repository
  $ hoard info /path/to/repo

  # the last archive, as JSON
  $ hoard info --json --last 1 /path/to/repo
"#
);

/// `delete`
pub const DELETE: &str = concat!(
    r#"Description:
  Deletes archives, or the whole repository when a repository without archive names or
  filters is given. The space the deleted archives used is only returned to the file
  system by `hoard compact`.

  Deleting a repository also removes its local cache and security information; use
  --cache-only to delete only the cache, --keep-security-info to keep the security
  information.

  Several archives can be named after the repository, or chosen with -a/--glob-archives
  (see `hoard help patterns`). Try the command with --dry-run --list first to see what
  would go, especially with patterns.

  --stats prints the size of what was deleted ("Deleted data", the amount the repository
  will shrink by after compact) and the repository totals after deletion; --quick-stats
  skips those totals. Neither goes with --dry-run. --force deletes even archives whose
  metadata is damaged; a second --force also ignores errors while doing so.

"#,
    archive_filter_text!(),
    r#"

Examples:
  # one archive
  $ hoard delete /path/to/repo::Monday
  # several archives of the same repository
  $ hoard delete /path/to/repo Monday Tuesday
  # all archives whose name starts with the host name, showing what would go
  $ hoard delete --dry-run --list -a '{hostname}-*' /path/to/repo
  # actually free the space
  $ hoard compact /path/to/repo

  # the whole repository and its local cache (asks for confirmation)
  $ hoard delete /path/to/repo

  # only the local cache
  $ hoard delete --cache-only /path/to/repo
"#
);

/// `prune`
pub const PRUNE: &str = r#"Description:
  Deletes every archive that none of the --keep-* rules retains. Space is only returned
  to the file system by a later `hoard compact`. Scripts use it to keep a bounded history
  (a grandfather-father-son rotation).

  Checkpoint archives left by interrupted runs are deleted too, except the newest archive
  if it is a checkpoint; checkpoints do not count towards any --keep-* number.

  Without -a/--glob-archives every archive of the repository is a candidate, whatever
  machine or data set it came from. If one repository holds several series (other hosts,
  other directories), prune each series on its own with a matching -a 'NAME-*'; only the
  matching archives are then considered and counted.

Rules:
  --keep-within INTERVAL keeps everything newer than INTERVAL, a number followed by
  H, d, w, m or y (hours, days, weeks, months of 31 days, years), e.g. 2d = the last 48
  hours. Archives kept this way do not count for the other rules.

  --keep-daily 7 keeps the newest archive of each of the last 7 days that have archives
  (days without one do not count); the other --keep-<period> options work alike. The
  rules are applied from secondly to yearly, and an archive kept by one rule does not
  count for the next. Creation times are taken in the local time zone; weeks start on
  Monday. A negative number means "no limit". When a rule cannot fill its quota, the
  oldest archive is kept for it, so the first archive keeps ageing until a newer one
  takes its place.

  --keep-13weekly and --keep-3monthly are two ways of keeping one archive per quarter.
  --keep-last N is the same as --keep-secondly N: the N newest archives (assuming no two
  were made in the same second).

  --list shows for each archive whether it is kept (and by which rule) or pruned.
  --stats prints the amount of deleted data; --quick-stats leaves out the repository
  totals. --force prunes even archives whose metadata is damaged.

Examples:
  # see what would happen: keep 7 daily and 4 weekly end-of-week archives
  $ hoard prune -v --list --dry-run --keep-daily=7 --keep-weekly=4 /path/to/repo

  # the same, only for this host's archives (others are left alone)
  $ hoard prune -v --list --keep-daily=7 --keep-weekly=4 -a '{hostname}-*' /path/to/repo

  # 7 daily, 4 weekly and a monthly archive for every month
  $ hoard prune -v --list --keep-daily=7 --keep-weekly=4 --keep-monthly=-1 /path/to/repo

  # everything of the last 10 days, then 4 weekly and 6 monthly
  $ hoard prune -v --list --keep-within=10d --keep-weekly=4 --keep-monthly=6 /path/to/repo

  # after pruning, free the space
  $ hoard compact /path/to/repo
"#;

/// `compact`
pub const COMPACT: &str = r#"Description:
  Rewrites the repository's segment files to drop deleted data and so gives space back to
  the file system. Run it from time to time, and in particular after `delete` or `prune`:
  only compaction really frees space. It needs no key, so it can run on the client or on
  the server, and --progress helps to follow a long run.

  A segment is rewritten when at least --threshold percent (default 10) of it would be
  freed. --threshold 0 rewrites every segment with anything to gain (thorough but slow on
  big repositories), 1 gets nearly the same result much faster, 100 does nothing. With
  --verbose the freed space is estimated.

  --cleanup-commits removes the many 17-byte commit-only segments that borg 1.1 left behind
  (once per repository is enough); a normal compaction follows.

  -n/--dry-run opens and locks the repository and changes nothing (as in borg 1.4.5, it
  reports nothing either; it exists to simplify scripts).

Examples:
  # free the space of deleted archives
  $ hoard compact /path/to/repo

  # compact as much as possible, with progress and a space estimate
  $ hoard compact --progress -v --threshold 1 /path/to/repo
"#;

/// `check`
pub const CHECK: &str = concat!(
    r#"Description:
  Verifies a repository and its archives, in two steps.

  1. Repository: every segment's header and every object's size and CRC are checked and the
     index is compared with the segments. This finds bit rot and other accidental damage.
     For a remote repository this step runs on the server, with little network traffic.

  2. Archives: the manifest, each archive's metadata and the chunks that files refer to
     must exist and be consistent. This reads metadata, not file data; it runs on the
     client because it needs the key.

  --repository-only and --archives-only run one step alone.

  --verify-data additionally reads, decrypts and decompresses every data chunk and checks
  its id; this detects any corruption (and, with encryption, tampering by someone without
  the key), but takes long. It does not go with --repository-only.

  --max-duration SECONDS makes the repository step partial: it stops after SECONDS and the
  next run continues where it stopped (a 7-hour check run daily with --max-duration=3600
  completes once a week). A partial check only verifies CRCs (no index check), and needs
  --repository-only without --archives-only or --repair. A full check starts over.

  hoard also accepts --max-duration with --verify-data (not with --repair): the repository
  step is partial as above, the archives step runs in full, and the data verification
  stops after SECONDS (finishing the segment it is in). It takes the segments never
  verified first (new ones, and those compact rewrote), then those verified longest ago,
  so daily runs cover the whole repository in turn. Which segments were verified when is
  kept by this client, in its security directory for the repository (never in the
  repository). Over borg serve, which tells no segments, it continues from the last object
  it verified instead. A --verify-data run without --max-duration verifies everything and
  records it too. --archives-only leaves out the repository step.

  --coverage checks nothing: it prints how much of the repository's data was verified
  without error within the last --coverage-days days (default 7), in bytes, percent and
  segments (over borg serve: an estimate from object counts).

Repair (--repair):
  By default check only reads and reports. --repair tries to fix what it found, and
  might lose data in situations it does not handle, so back up the repository first if
  you can, and test the machine's memory and disks: faulty hardware makes things worse.
  Repairing keeps the rest of the repository usable; it does not bring lost data back. It asks for confirmation (or BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=YES).
  A missing file chunk is replaced by zeros of the same length, and the file is
  marked; if the chunk shows up again later (a new backup of the same data), a later
  --repair heals the file. Archives whose metadata is lost are removed, the manifest is
  rebuilt if needed, and orphaned chunks are deleted. --save-space saves disk space at the
  cost of speed.

"#,
    archive_filter_text!(),
    r#"

Examples:
  # full check of repository and archives
  $ hoard check -v --progress /path/to/repo

  # also verify all data cryptographically
  $ hoard check --verify-data /path/to/repo

  # only the newest 3 archives of this host
  $ hoard check --archives-only -a '{hostname}-*' --last 3 /path/to/repo

  # repository check spread over a week, one hour per run
  $ hoard check --repository-only --max-duration 3600 /path/to/repo

  # data verification spread over the week: one hour a day, then how far it got
  $ hoard check --archives-only --verify-data --max-duration 3600 /path/to/repo
  $ hoard check --coverage --coverage-days 7 /path/to/repo

  # try to fix problems (back up the repository first)
  $ hoard check --repair /path/to/repo
"#
);

/// `diff`
pub const DIFF: &str = r#"Description:
  Shows what changed between two archives of the same repository: file contents, owner,
  group, mode, and items added or removed. The first argument is REPO::ARCHIVE1, the
  second only ARCHIVE2's name. PATHs and the pattern options limit the comparison.

  For each changed path one line is printed: the content change as "+ADDED -REMOVED"
  bytes, metadata changes such as "[old_mode -> new_mode]" or "[user:group -> ...]", or
  "added SIZE" / "removed SIZE". --json-lines prints one JSON object per path instead:
  {"path": PATH, "changes": [{"type": "modified", "added": N, "removed": N}, ...]}.
  --content-only ignores metadata. --sort orders the output by path; --sort-by FIELDS
  by a comma-separated list of path, size, size_added, size_removed, size_diff, user,
  group, uid, gid, ctime, mtime, ctime_diff, mtime_diff (prefix > for descending, < or
  nothing for ascending; later fields break ties).

  Archives made with the same chunker parameters are compared by chunk id, which is fast;
  otherwise contents are compared. Archives from borg before 1.1 do not record the
  parameters: pass --same-chunker-params if you know they were equal.
  --numeric-ids compares uid/gid instead of user and group names.

Examples:
  $ hoard diff /path/to/repo::archive1 archive2
  +17 B   -5 B   file1
  added   0 B    file4
  removed 0 B    file3
  [-rw-r--r-- -> -rwxr-xr-x] file2

  # only one directory, as JSON Lines
  $ hoard diff --json-lines /path/to/repo::monday tuesday home/user/src

  # content changes only, sorted by path
  $ hoard diff --content-only --sort /path/to/repo::monday tuesday
"#;

/// `rename`
pub const RENAME: &str = r#"Description:
  Gives an archive a new name. Its contents stay the same, but the archive gets a new id.
  Placeholders such as {now} are replaced in NEWNAME.

Examples:
  $ hoard create /path/to/repo::archivename ~
  $ hoard list /path/to/repo
  archivename                          Mon, 2016-02-15 19:50:19 [...]

  $ hoard rename /path/to/repo::archivename newname
  $ hoard list /path/to/repo
  newname                              Mon, 2016-02-15 19:50:19 [...]
"#;

/// `export-tar`
pub const EXPORT_TAR: &str = r#"Description:
  Writes an archive (or the selected PATHs of it) as a tarball to FILE, or to stdout when
  FILE is "-".

  With --tar-filter=auto (the default) the extension of FILE picks a compressor that the
  tar stream is piped through: .tar.gz/.tgz gzip, .tar.bz2/.tbz bzip2, .tar.xz/.txz xz,
  .tar.zstd/.tar.zst zstd, .tar.lz4 lz4; any other name gets an uncompressed tarball.
  --tar-filter=PROGRAM uses PROGRAM instead, which reads the plain tar stream on stdin and
  writes the result to stdout.

  --tar-format picks what the tarball holds (a hoard extension with borg 2's meaning; borg
  1.4 always writes GNU, which stays the default and is byte for byte borg 1.4's output):

    --tar-format  Specification              Metadata
    GNU           GNU tar format             mtime in seconds; no atime, ctime, ACLs,
                                             xattrs or flags
    PAX           POSIX.1-2001 (pax) format  GNU + atime/ctime/mtime in ns, xattrs
                                             (SCHILY.xattr.*) and POSIX ACLs
                                             (SCHILY.acl.access/default), as GNU tar
                                             --xattrs --acls writes and extracts them
    BORG          PAX, plus the whole item   everything borg stores (BORG.item.meta:
                  in BORG.item.meta          the msgpacked item, base64), for import-tar

  `import-tar` reads PAX and BORG tarballs back with their metadata. There is no --sparse.

  PATHs and the pattern options select items as for `extract`. --progress needs an extra
  pass over the metadata and can be slower.

Examples:
  # an uncompressed tarball
  $ hoard export-tar /path/to/repo::Monday Monday.tar

  # gzip-compressed, chosen by the extension
  $ hoard export-tar /path/to/repo::Monday Monday.tar.gz --exclude '*.so'

  # with an explicit filter, only one directory, dropping "home/user"
  $ hoard export-tar --tar-filter='xz -9' --strip-components 2 \
        /path/to/repo::Monday Monday.tar.xz home/user/src

  # to stdout, e.g. to another machine
  $ hoard export-tar /path/to/repo::Monday - | ssh host 'tar x -C /restore'

  # with xattrs and ACLs, for GNU tar
  $ hoard export-tar --tar-format PAX /path/to/repo::Monday Monday.tar
  $ tar --xattrs --acls -xpf Monday.tar
"#;

/// `import-tar`
pub const IMPORT_TAR: &str = concat!(
    r#"Description:
  Makes an archive from a tarball instead of from files on disk. TARFILE "-" reads the
  tar stream from stdin.

  With --tar-filter=auto (the default) the extension picks a decompressor: .tar.gz/.tgz
  gzip -d, .tar.bz2/.tbz bzip2 -d, .tar.xz/.txz xz -d, .tar.zstd/.tar.zst zstd -d,
  .tar.lz4 lz4 -d. --tar-filter=PROGRAM reads the file on stdin and must write a plain
  tar stream to stdout.

  Most of what `hoard create --help` says applies here (names, placeholders, statistics,
  --list flags), but files cannot be excluded. There is no --sparse.

  What a member's headers hold is imported (borg 2's rules; borg 1.4 keeps only what the
  GNU/ustar fields hold and a pax mtime): pax atime, ctime and mtime, xattrs
  (SCHILY.xattr.*, except the system.posix_acl_* copies of ACLs) and POSIX ACLs
  (SCHILY.acl.access/default), as GNU tar --xattrs --acls and `export-tar --tar-format
  PAX` write them; a tarball from `export-tar --tar-format BORG` gives back the items as
  they were (BORG.item.meta), with the member's type, name and content. Times read from
  pax records have the precision of a double (about 0.2 µs today).

  ustar (POSIX.1-1988), pax (POSIX.1-2001), GNU, UNIX V7 and SunOS tar files are read.
  Several tarballs can go into one archive: concatenate them (cat a.tar b.tar) and pass
  --ignore-zeros to skip the end markers between them.

"#,
    compression_text!(),
    r#"

Examples:
  # a tarball, compression found from the extension
  $ hoard import-tar /path/to/repo::imported backup.tar.gz

  # from stdin, with statistics
  $ curl -s https://example.com/data.tar | hoard import-tar --stats /path/to/repo::data -

  # two tarballs into one archive
  $ cat a.tar b.tar | hoard import-tar --ignore-zeros /path/to/repo::both -
"#
);

/// `recreate`
pub const RECREATE: &str = concat!(
    r#"Description:
  Rebuilds existing archives: drops items (by PATH and the pattern options), changes
  compression, re-chunks the data, or sets comment and timestamp. This can delete data
  for good when used carelessly; try --dry-run --list -v first. The space freed is
  returned to the file system only by `hoard compact`.

  PATH, --exclude, --exclude-from, --exclude-if-present and --keep-exclude-tags mean the same
  as for `create`, but they look at the items in the archive, not at the local file system.
  Items in an archive have relative paths, so absolute paths and patterns match nothing.
  With PATHs, only items below them remain.

  --recompress [MODE] recompresses existing chunks with --compression: if-different (the
  default when MODE is left out) only those stored with another method, always every chunk,
  never none. Sizes shown for archives that were not recreated together may be off
  afterwards; the data is safe.

  --chunker-params re-chunks every file (for example so that archives from borg 0.xx or
  attic deduplicate against new ones). Re-chunking or recompressing can temporarily need as
  much extra space as the archives' deduplicated size.

  While it works, the new archive exists as "ARCHIVE.recreate"; the old one is replaced
  only at the end, and the result has a new archive id. --target NAME keeps the old
  archive and writes a new one called NAME (one archive only).

  After `check --repair` replaced lost chunks by zeros, first make a new backup of the
  same data and run `check --repair` again, so the damaged files can heal: re-chunking
  removes the information that healing needs.

"#,
    compression_text!(),
    r#"

Examples:
  # make an old archive smaller by recompressing it
  $ hoard recreate /path/to/repo::archive --recompress --compression zstd,10

  # remove unwanted files from every archive of the repository
  $ hoard recreate /path/to/repo --exclude '*.tmp' --exclude 'home/*/.cache'
  $ hoard compact /path/to/repo

  # keep the original and write a trimmed copy next to it
  $ hoard recreate /path/to/repo::archive --target archive-small --exclude 'home/*/Videos'

  # add a comment afterwards
  $ hoard recreate --comment "before the upgrade" /path/to/repo::archive

  # see what would be dropped, without changing anything
  $ hoard recreate --dry-run --list -v /path/to/repo::archive --exclude '*.iso'
"#
);

/// `mount`
pub const MOUNT: &str = concat!(
    r#"Description:
  Makes an archive, or the whole repository, available as a read-only FUSE file system,
  to browse it or copy single files back. Flags and ACLs are not shown through FUSE.

  For a repository, the top level has one directory per archive; an archive's contents are
  loaded when its directory is first entered, which can take a while. Mounting one
  archive, or only some PATHs of it, is faster than mounting everything.

  Symbolic links are stored as they were, so an absolute link, or a relative one that
  climbs out of the mount point, leads into the live file system rather than the archive.
  On Linux, `mount -o remount,nosymfollow MOUNTPOINT` prevents that; or look at the files
  from a chroot or container.

  Without -f/--foreground the command goes into the background and returns once the file
  system is ready; it ends when the file system is unmounted (`hoard umount`).

  -o passes FUSE mount options (see mount.fuse(8)), for example allow_other, plus these:
  versions (merge all archives into one tree in which every file is a directory holding
  all its versions), allow_damaged_files (allow reading files that have zero-filled
  replacement chunks; they are refused otherwise), ignore_permissions (do not enforce the
  stored permissions; the default is default_permissions), uid=N and gid=N (show every
  item as owned by N) and umask=M (octal bits to clear from every mode).

  Files are shown with the user and group names stored in the archive, mapped to this
  system's ids; --numeric-ids shows the stored ids instead.

  In the foreground, Ctrl-C (SIGINT) unmounts cleanly. A background process that is
  killed or crashes does not unmount, so that a running rsync cannot mistake the empty
  mount point for deleted files. The background process discards its output: use
  -f/--foreground to see log messages when debugging.

"#,
    archive_filter_text!(),
    r#"

Examples:
  # one archive
  $ mkdir /tmp/mymountpoint
  $ hoard mount /path/to/repo::root-2016-02-15 /tmp/mymountpoint
  $ ls /tmp/mymountpoint
  bin  boot  etc  home  lib  ...
  $ hoard umount /tmp/mymountpoint

  # the whole repository, staying in the foreground
  $ hoard mount -f /path/to/repo /tmp/mymountpoint

  # every version of every file of the last 10 archives
  $ hoard mount -o versions --last 10 /path/to/repo /tmp/mymountpoint

  # only one directory of an archive, readable by other users
  $ hoard mount -o allow_other /path/to/repo::archive /tmp/mymountpoint home/user
"#
);

/// `umount`
pub const UMOUNT: &str = r#"Description:
  Unmounts a file system that `hoard mount` mounted. It only runs the platform's own
  tool (fusermount -u on Linux, umount elsewhere) for you.

Examples:
  $ hoard mount /path/to/repo::archive /tmp/mymountpoint
  $ hoard umount /tmp/mymountpoint
"#;

/// `key export`
pub const KEY_EXPORT: &str = r#"Description:
  Writes a backup copy of the repository key. Without the key (and its passphrase) an
  encrypted repository cannot be read; an authenticated-only one needs it for normal use.

  With keyfile modes the key exists only on the client: back it up separately from the
  data, or losing the client means losing access. With repokey and authenticated modes
  the key is in the repository; a copy still protects against a damaged or lost key.

  The copy is still encrypted with the passphrase; to get your data back you need both
  the copy and the passphrase. Keep them safe, and apart.

  Formats: the default is the key file as text (for storing digitally). --paper gives lines
  with checksums, meant to be printed and typed in again (`key import --paper` checks
  each line). --qr-html writes an HTML page with a QR code and the --paper text, for
  printing. Without PATH (or with "-") the key goes to stdout.

Examples:
  $ hoard key export /path/to/repo > encrypted-key-backup
  $ hoard key export /path/to/repo encrypted-key-backup
  $ hoard key export --paper /path/to/repo encrypted-key-backup.txt
  $ hoard key export --qr-html /path/to/repo encrypted-key-backup.html
"#;

/// `key import`
pub const KEY_IMPORT: &str = r#"Description:
  Restores a key saved with `key export`. PATH "-" reads it from stdin. With --paper the
  key is typed in line by line, each line checked before the next is asked for; PATH
  must then be left out.

  For keyfile repositories the key is written to $BORG_KEY_FILE when that is set and not
  empty; otherwise to the existing key file for this repository in $BORG_KEYS_DIR, or to a
  new file there. For repokey repositories it goes back into the repository.

Examples:
  $ hoard key import /path/to/repo encrypted-key-backup
  $ hoard key import /path/to/repo - < encrypted-key-backup
  $ hoard key import --paper /path/to/repo
"#;

/// `key change-passphrase` (and the deprecated `change-passphrase`)
pub const KEY_CHANGE_PASSPHRASE: &str = r#"Description:
  Sets a new passphrase for the repository key (asked for interactively, or taken from
  BORG_NEW_PASSPHRASE). Only the protection of the key changes: the secrets inside it
  (encryption key, MAC key, chunker seed) stay the same. So if key and passphrase have
  both leaked, a new passphrase protects neither old nor new backups in this repository.

Examples:
  # (the repository was created with --encryption=keyfile)
  $ hoard key change-passphrase -v /path/to/repo
  Enter passphrase for key /root/.config/borg/keys/mnt_backup:
  Enter new passphrase:
  Enter same passphrase again:
  Key updated

  # the older spelling, kept for compatibility
  $ hoard change-passphrase /path/to/repo
"#;

/// `key`
pub const KEY: &str = r#"Description:
  Commands that work on the repository key: export a backup copy, import it again, or
  change its passphrase. See `hoard key SUBCOMMAND --help`.

Examples:
  $ hoard key export /path/to/repo key-backup
  $ hoard key change-passphrase /path/to/repo
"#;

/// `break-lock`
pub const BREAK_LOCK: &str = r#"Description:
  Removes the repository lock and the cache lock, for example after a borg or hoard
  process was killed and left them behind. Only do this when you are sure that no
  process, on any machine, is using the repository or the cache.

Examples:
  $ hoard break-lock /path/to/repo
  $ hoard break-lock ssh://user@host/./repo
"#;

/// `with-lock`
pub const WITH_LOCK: &str = r#"Description:
  Takes the repository lock (waiting up to --lock-wait seconds, so that no other operation
  runs), runs COMMAND with ARGS, waits for it, releases the lock and exits with COMMAND's
  exit code.

  A repository copied while locked contains the lock. Before using the copy from another
  host, run `hoard break-lock` on it: stale locks from other hosts are never removed
  automatically.

Examples:
  # copy a repository while nothing can change it
  $ hoard with-lock /mnt/borgrepo rsync -av /mnt/borgrepo /somewhere/else/borgrepo
"#;

/// `config`
pub const CONFIG: &str = r#"Description:
  Reads and changes settings in a local repository's config file, or with --cache in its
  cache's config file. For safety it does not work on remote repositories.

  NAME alone prints the value; NAME VALUE sets it; --delete NAME removes it; --list prints
  all settings (with the defaults for the repository). NAME is "section.name" or just
  "name", which means the "repository" section (or "cache" with --cache).

  Settings of the repository include append_only, storage_quota, additional_free_space,
  max_segment_size and segments_per_dir.

Examples:
  # make a repository append-only
  $ hoard config /path/to/repo append_only 1
  # read it back
  $ hoard config /path/to/repo append_only
  1
  # set a storage quota of 50 GB
  $ hoard config /path/to/repo storage_quota 50G
  # everything
  $ hoard config --list /path/to/repo
  # remove a setting
  $ hoard config --delete /path/to/repo additional_free_space
"#;

/// `upgrade`
pub const UPGRADE: &str = r#"Description:
  Updates metadata of an existing local repository. Moving a repository, or going to
  another point release, does not need it.

  Archive authentication (TAM): borg 1.2.5 and later, and hoard, require every archive to
  carry a TAM (an authentication tag). Archives made by borg before 1.0.9 have none.
  --check-archives-tam lists archives without a valid TAM; --archives-tam adds a TAM to
  every archive lacking one, which means trusting them all: in a high-risk setting first
  make sure those archives are genuine (good contents, plausible timestamps). Once per
  repository is enough.

  Manifest authentication: --check-tam reports whether the manifest is authenticated and
  required to be so by the manifest, the key and this client's security database; --tam
  makes all three require it (the key is saved again under the same passphrase);
  --disable-tam stops requiring it (only for clients older than borg 1.0.9; it weakens
  the protection against a tampered repository). --force loads a manifest whose TAM is
  missing although the key requires one. As in borg 1.4.5, a plain `upgrade` on a current
  repository (attic and borg 0.xx conversion; -n, --inplace) changes nothing.

Examples:
  # which archives lack a TAM?
  $ hoard upgrade --check-archives-tam /path/to/repo
  # add TAMs to them (after making sure they are genuine)
  $ hoard upgrade --archives-tam /path/to/repo
  # see what would be changed
  $ hoard upgrade --dry-run --archives-tam /path/to/repo
  # is the manifest authenticated and is that required?
  $ hoard upgrade --check-tam /path/to/repo
"#;

/// `serve`
pub const SERVE: &str = r#"Description:
  The server side of a remote repository: ssh starts `hoard serve` on the repository host
  and the client talks to it over stdin/stdout with borg's RPC protocol, so borg clients
  work with it too. It is not meant to be run by hand.

  --restrict-to-path PATH allows repositories anywhere below PATH; --restrict-to-repository
  PATH only the repository at PATH itself. Both may be repeated. --append-only makes every
  repository append-only for this connection, and --storage-quota overrides the quota (also
  for repositories the client initialises). Put these in the forced command of an ssh key
  in ~/.ssh/authorized_keys, so the key can do nothing else.

Examples:
  # what ssh runs on the server for a client (normally never typed by hand)
  $ hoard serve --restrict-to-path /srv/backup

  # ~/.ssh/authorized_keys on the server: this key may only reach one repository
  command="hoard serve --restrict-to-repository /srv/backup/host1",restrict ssh-ed25519 AAAA...

  # several repositories under one directory, append-only
  command="hoard serve --append-only --restrict-to-path /srv/backup",restrict ssh-ed25519 AAAA...
"#;

/// `run`
pub const RUN: &str = r#"Description:
  Runs a configured backup job: before-hooks, create, prune, compact and, when due,
  check, each with its own number of tries and 10 seconds between them (retry_wait: S
  makes try n wait S x n seconds instead); then the after/on_error hooks and a
  health-check ping. A job lock keeps two runs of the same job apart. The exit code is 0
  when every step succeeded (perhaps on a later try), 1 for warnings, 2 for a failure,
  and the last log line says which, for cron mail filters.

  The run ends with a summary line (archive, files, original / compressed / deduplicated
  size, duration, tries) and writes status.json and history.jsonl in the job folder
  (see `hoard status` and `hoard report`); with `metrics: FILE` in the config or
  --metrics-file FILE, also a Prometheus text file for node_exporter's textfile collector.

  NAME is a job folder under ~/backup_scripts (or $HOARD_CONFIG_DIR), or a path to a job
  folder or config file. A job folder holds config.yaml, and optionally
  BORGKeyPassword.file (the passphrase), BORGKey.bak (the key file) and SSHKey.pem (the
  ssh key for a remote target). See examples/README.md for every config key.

  --init creates the repository, a passphrase file and a key backup when missing.
  --dry-run runs create and prune with --dry-run and skips compact, check, hooks and
  pings. --nocreate and --nocleanup skip steps; --shell opens $SHELL with the job's
  environment (BORG_REPO, BORG_PASSCOMMAND, ...) to run hoard commands by hand.

Examples:
  # run the job in ~/backup_scripts/home
  $ hoard run --config home

  # first run: create repository, passphrase and key backup
  $ hoard run --config home --init

  # what would be backed up and pruned?
  $ hoard run --config /etc/hoard/jobs/srv --dry-run -v

  # a shell in which hoard commands reach the job's repository
  $ hoard run --config home --shell
  $ hoard list
"#;

/// `schedule`
pub const SCHEDULE: &str = r#"Description:
  Prints a crontab line, or with --systemd a systemd service and timer, that runs
  `hoard run --config NAME` every day at --at (HH:MM, default 02:00). --install adds the
  line to this user's crontab or writes the units to ~/.config/systemd/user/.

Examples:
  $ hoard schedule --config home
  $ hoard schedule --config home --at 03:30 --install
  $ hoard schedule --config home --systemd --install
"#;

/// `status`
pub const STATUS: &str = r#"Description:
  Lists every job folder under FOLDER (default: where `hoard run` looks for jobs,
  $HOARD_CONFIG_DIR or ~/backup_scripts; FOLDER may also be one job folder) with its last
  success, the age of it, the last run's result, the repository's archive count and
  size, read from each job's status.json (no repository is opened, no passphrase is
  needed).

  The exit code is for monitors: 0 when every job is healthy, 1 when a job has not
  succeeded within --max-age (default 36h) or has never run, 2 when a job failed last
  time or its status file cannot be read.

Examples:
  $ hoard status
  $ hoard status /etc/hoard/jobs --max-age 8d
  $ hoard status --json
"#;

/// `report`
pub const REPORT: &str = r#"Description:
  Writes one self-contained HTML file (inline SVG charts and CSS: no scripts, fonts or
  network requests) about a repository or a backup job: the archives over time
  (original and deduplicated size, duration), the repository's growth and
  deduplication ratio, for a job its run history (result and tries of each run), and the
  table of archives. It reads well on a phone and prints on paper.

  For a repository, the figures come from the archives in it (like `info` on every
  archive; the passphrase is needed). For a job (a name under ~/backup_scripts, a job
  folder or its config.yaml), they come from the job's run history (history.jsonl), so
  no repository is opened.

Examples:
  $ hoard report /srv/backup/repo --html repo.html
  $ hoard report home --html home-job.html
"#;

/// `completion`
pub const COMPLETION: &str = r#"Description:
  Prints a completion script for SHELL on stdout. It is generated from the same
  definitions as --help, so it always knows every command and option of this hoard.

Examples:
  # bash: for the current shell, or for good
  $ source <(hoard completion bash)
  $ hoard completion bash > ~/.local/share/bash-completion/completions/hoard

  # zsh: into a directory on $fpath
  $ hoard completion zsh > ~/.zfunc/_hoard

  # fish
  $ hoard completion fish > ~/.config/fish/completions/hoard.fish
"#;

/// `man`
pub const MAN: &str = r#"Description:
  Prints a manual page in roff format, generated from the same definitions as --help:
  hoard's overview page, or with COMMAND (e.g. `create`, or `key export`) that command's
  page. --dir DIR writes the pages of all commands into DIR instead, named hoard.1,
  hoard-create.1, hoard-key-export.1 and so on.

Examples:
  $ hoard man create | man -l -
  $ hoard man --dir ~/.local/share/man/man1
  $ man hoard-prune
"#;

/// `hoard --help`
pub const HOARD: &str = r#"Description:
  hoard reads and writes BorgBackup 1.x repositories and accepts borg's command line, so it
  can stand in for borg 1.2/1.4 in scripts and frontends. Every command has its own
  `hoard COMMAND --help` with a description and examples (-h shows only the summary).

Repository locations:
  /path/to/repo                       a local directory
  ssh://user@host:port/path/to/repo   over ssh, `hoard serve` (or `borg serve`) runs there
  user@host:path/to/repo              the scp-style form of the same
  file:///path/to/repo                a local directory as a URL
  s3://[ACCESS@]HOST[:PORT]/BUCKET[/PREFIX], s3+https://...
                                      S3-compatible object storage (hoard only; see
                                      --s3-credentials-command)
  REPOSITORY::ARCHIVE                 one archive of a repository
  When the repository is left out, BORG_REPO is used. Passphrases come from
  BORG_PASSPHRASE, BORG_PASSCOMMAND or BORG_PASSPHRASE_FD, or are asked for.

Shell completion and manual pages:
  `hoard completion bash|zsh|fish` prints a completion script; `hoard man [COMMAND]`
  prints a manual page and `hoard man --dir DIR` writes all of them.

Examples:
  $ hoard init --encryption=repokey /path/to/repo
  $ hoard create --stats /path/to/repo::'{hostname}-{now}' ~/Documents
  $ hoard list /path/to/repo
  $ hoard extract /path/to/repo::myhost-2024-01-31T12:00:00 home/user/Documents
  $ hoard prune --keep-daily 7 --keep-weekly 4 /path/to/repo && hoard compact /path/to/repo
  $ hoard create --help
"#;
