#!/usr/bin/env bash
# EC2 boot path of express-api (buildonce): resolve the release, verify it, unpack, flip, start.
#
#   1. resolve the artifact: DEPLOYMENT_BUCKET + DEPLOYMENT_KEY, or BUILDONCE_ENV (the environment's
#      release pointer: SSM parameter /buildonce/<env>/<project> = {"bucket","key","version","sha256"},
#      or with BUILDONCE_POINTER=s3 the ledger's releases/<project>/<env>/current.json in BUILDONCE_STORE);
#   2. head-object the tarball and its manifest (artifacts/<project>/<version>/manifest.json); missing
#      -> exit 1 listing the newest published versions;
#   3. download both, check the tarball's size and sha256 against the manifest (and the pointer);
#      mismatch -> exit 1, nothing on disk changed, the previous release keeps serving;
#   4. check the tarball against the deploy tar policy (the same as deployLocal's: files, directories
#      and symlinks that stay inside only), then unpack with GNU tar into a fresh private temp dir and
#      judge the extracted tree on disk (check_tree: the extractor's result, not a second parser's
#      reading), then move it to <root>/releases/<version> (mv -T), add .buildonce/manifest.json (the stored manifest, byte for byte); leftovers of a killed
#      earlier run (.incoming/*, releases/.*.tmp-*, .current.tmp-*) are removed under the deploy lock;
#   5. flip <root>/current -> releases/<version> atomically (ln -sfn to a temp link + mv -T);
#   6. write and (re)start a systemd unit, then wait for GET /health to report the version; when it
#      does not, flip current back to the previous release, restart that, and exit 1 with one line;
#      or with --foreground exec node in the foreground (tests, containers);
#   7. prune releases/ to the newest --keep (default 3) by unpack time; current and previous always stay.
#
# Same layout as libs/deploy/src/local.ts (deployLocal). Needs: bash, aws CLI, node (>= the manifest's
# runtime), tar, gzip, sha256sum, coreutils; curl for the health check. JSON is parsed with node.
#
# Usage: user-data.sh [--root DIR] [--project NAME] [--port N] [--foreground | --no-start]
#                     [--systemd-dir DIR] [--health-timeout SECONDS] [--keep N]
# Environment (template these at the top of the instance's user data):
#   DEPLOYMENT_BUCKET, DEPLOYMENT_KEY   the tarball object ([prefix/]artifacts/<project>/<version>/<file>)
#   BUILDONCE_ENV                       environment name, read its release pointer instead
#   BUILDONCE_POINTER                   ssm (default) or s3 (then BUILDONCE_STORE=s3://bucket/prefix)
#   BUILDONCE_SSM_PARAMETER             pointer parameter name (default /buildonce/<env>/<project>)
#   BUILDONCE_ROOT (--root)             install root, default /opt/<project>
#   PORT (--port)                       service port, default 3000
#   BUILDONCE_NODE                      node binary, default $(command -v node)
#   BUILDONCE_SYSTEMCTL                 systemctl binary (tests stub it), default systemctl
#   BUILDONCE_KEEP_RELEASES (--keep)    releases kept on disk (>= 2), default 3
set -euo pipefail
umask 022 # the service (systemd DynamicUser) must be able to read the release

project="${BUILDONCE_PROJECT:-express-api}"
root="${BUILDONCE_ROOT:-}"
port="${PORT:-3000}"
mode="systemd"
systemd_dir="${BUILDONCE_SYSTEMD_DIR:-/etc/systemd/system}"
health_timeout="${BUILDONCE_HEALTH_TIMEOUT:-60}"
keep="${BUILDONCE_KEEP_RELEASES:-3}"
newest_count=5

log() { printf '%s [%s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$project" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { sed -n '/^# Usage:/,/^set -euo/p' "$0" | sed '$d' >&2; exit 2; }

# --- store keys: a mirror of libs/store/src/keys.ts (this script cannot import it); --------------
# apps/express-api/e2e/test/keys-mirror.spec.ts asserts both build the same keys.
# project key: "name" -> "name", "@scope/name" -> "scope--name"; empty output = not a usable project name
project_key_of() {
  local seg='[A-Za-z0-9]([A-Za-z0-9._]|-[A-Za-z0-9._])*' k=""
  if [[ "$1" =~ ^@($seg)/($seg)$ ]]; then k="${BASH_REMATCH[1]}--${BASH_REMATCH[3]}"
  elif [[ "$1" =~ ^$seg$ ]]; then k="$1"
  fi
  [ "${#k}" -le 128 ] && printf '%s' "$k"
  return 0
}
# releases/<project key>/<env>/current.json under a store prefix ("" or "prefix/")
current_key_of() { printf '%sreleases/%s/%s/current.json' "$1" "$2" "$3"; }
# [preview/]artifacts/<project key>/<version>/<file> under a store prefix; $2 = trusted|preview
artifact_key_of() {
  local ns=""
  [ "$2" = "preview" ] && ns="preview/"
  printf '%s%sartifacts/%s/%s/%s' "$1" "$ns" "$3" "$4" "$5"
}
# every version of a project: <key prefix up to artifacts/>artifacts/<project key>/
versions_prefix_of() { printf '%sartifacts/%s/' "$1" "$2"; }
[ "${BUILDONCE_USER_DATA_KEYS_ONLY:-}" = 1 ] && return 0 2>/dev/null

while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="${2:?--root needs a directory}"; shift 2 ;;
    --project) project="${2:?--project needs a name}"; shift 2 ;;
    --port) port="${2:?--port needs a number}"; shift 2 ;;
    --foreground) mode="foreground"; shift ;;
    --no-start) mode="none"; shift ;;
    --systemd-dir) systemd_dir="${2:?--systemd-dir needs a directory}"; shift 2 ;;
    --health-timeout) health_timeout="${2:?--health-timeout needs seconds}"; shift 2 ;;
    --keep) keep="${2:?--keep needs a number}"; shift 2 ;;
    -h|--help) usage ;;
    *) log "unknown argument: $1"; usage ;;
  esac
done
pkey="$(project_key_of "$project")"
[ -n "$pkey" ] || die "invalid project name \"$project\": use name or @scope/name (letters, digits, \".\", \"_\", \"-\", no \"--\")"
root="${root:-/opt/$pkey}"
[[ "$port" =~ ^[0-9]{1,5}$ ]] || die "PORT must be a number, got \"$port\""
[[ "$health_timeout" =~ ^[0-9]+$ ]] || die "--health-timeout must be a number of seconds"
if ! [[ "$keep" =~ ^[0-9]+$ ]] || [ "$keep" -lt 2 ]; then die "--keep must be a number >= 2 (current and previous always stay), got \"$keep\""; fi

[ -n "${DEPLOYMENT_BUCKET:-}${DEPLOYMENT_KEY:-}${BUILDONCE_ENV:-}" ] ||
  die "nothing to deploy: set DEPLOYMENT_BUCKET and DEPLOYMENT_KEY, or BUILDONCE_ENV"

node_bin="${BUILDONCE_NODE:-$(command -v node || true)}"
[[ -n "$node_bin" && -x "$node_bin" ]] || die "node not found: install Node.js in the AMI (or set BUILDONCE_NODE)"
for c in aws tar sha256sum stat mktemp; do command -v "$c" >/dev/null 2>&1 || die "$c not found"; done

# JSON field(s) of a file, one per line, via node (jq is not on every AMI). $1 file, $2 JS expression of `j`.
# Plain stdout writes: console.log would colour numbers when FORCE_COLOR is set.
json() { "$node_bin" -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); const v=(0,eval)("(j)=>"+process.argv[2])(j); for (const x of [].concat(v)) process.stdout.write(String(x ?? "") + "\n");' "$1" "$2"; }
# fields <file> <expression> <what>: the expression's values, one per line, into $work/fields; dies on bad JSON.
fields() {
  json "$1" "$2" >"$work/fields" 2>"$work/err" || die "$3 is not what was expected: $(grep -m1 -E 'Error' "$work/err" || tail -n 1 "$work/err")"
}

# Region from the instance metadata (IMDSv2) when the environment has none.
if [ -z "${AWS_REGION:-}${AWS_DEFAULT_REGION:-}" ] && [ "${AWS_EC2_METADATA_DISABLED:-}" != "true" ] && command -v curl >/dev/null 2>&1; then
  imds_token="$(curl -fsS -m 2 -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' 2>/dev/null || true)"
  if [ -n "$imds_token" ]; then
    AWS_DEFAULT_REGION="$(curl -fsS -m 2 -H "X-aws-ec2-metadata-token: $imds_token" http://169.254.169.254/latest/meta-data/placement/region 2>/dev/null || true)"
    export AWS_DEFAULT_REGION
    log "region $AWS_DEFAULT_REGION (instance metadata)"
  fi
fi

mkdir -p "$root/releases" "$root/.incoming" || die "cannot create $root/releases: check the install root's permissions"
root="$(cd "$root" && pwd -P)"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$root/.lock"
  flock -w 600 9 || die "another deploy holds $root/.lock"
  # Holding the lock, nothing else is deploying: remove what a killed earlier run left behind
  # (downloads in .incoming/, half-unpacked releases/.<version>.tmp-*, .current.tmp-* links).
  leftovers="$(find "$root/.incoming" "$root/releases" "$root" -mindepth 1 -maxdepth 1 \( -path "$root/.incoming/*" -o -name '.*.tmp-*' -o -name '.current.tmp-*' \) -print 2>/dev/null | sort -u)"
  if [ -n "$leftovers" ]; then
    log "removing $(printf '%s\n' "$leftovers" | wc -l) leftover(s) of an interrupted deploy"
    printf '%s\n' "$leftovers" | while IFS= read -r f; do rm -rf -- "$f"; done
  fi
fi
work="$(mktemp -d "$root/.incoming/userdata-XXXXXX")"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# --- 1. resolve the artifact -------------------------------------------------------------------
bucket="" key="" pointer_sha=""
if [ -n "${DEPLOYMENT_BUCKET:-}" ] || [ -n "${DEPLOYMENT_KEY:-}" ]; then
  bucket="${DEPLOYMENT_BUCKET:?DEPLOYMENT_BUCKET is required with DEPLOYMENT_KEY}"
  key="${DEPLOYMENT_KEY:?DEPLOYMENT_KEY is required with DEPLOYMENT_BUCKET}"
  log "artifact from DEPLOYMENT_BUCKET/DEPLOYMENT_KEY: s3://$bucket/$key"
elif [ -n "${BUILDONCE_ENV:-}" ]; then
  env_name="$BUILDONCE_ENV"
  [[ "$env_name" =~ ^[a-z][a-z0-9-]{0,62}$ ]] || die "invalid environment name \"$env_name\""
  if [ "${BUILDONCE_POINTER:-ssm}" = "ssm" ]; then
    parameter="${BUILDONCE_SSM_PARAMETER:-/buildonce/$env_name/$pkey}"
    log "reading release pointer: SSM parameter $parameter"
    aws ssm get-parameter --name "$parameter" --query Parameter.Value --output text >"$work/pointer.json" 2>"$work/err" ||
      die "cannot read SSM parameter $parameter: $(tail -n 1 "$work/err") (has $project been promoted to $env_name?)"
    fields "$work/pointer.json" '[j.bucket, j.key, j.version, j.sha256]' "SSM parameter $parameter (a release pointer)"
    mapfile -t p <"$work/fields"
    bucket="${p[0]}" key="${p[1]}" pointer_sha="${p[3]}"
    [[ -n "$bucket" && -n "$key" ]] || die "SSM parameter $parameter has no bucket/key"
    log "pointer: $project@${p[2]} in $env_name -> s3://$bucket/$key"
  elif [ "${BUILDONCE_POINTER:-}" = "s3" ]; then
    store="${BUILDONCE_STORE:?BUILDONCE_POINTER=s3 needs BUILDONCE_STORE=s3://bucket/prefix}"
    [[ "$store" =~ ^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/(.*))?$ ]] || die "BUILDONCE_STORE must be s3://bucket/prefix, got \"$store\""
    bucket="${BASH_REMATCH[1]}"
    prefix="${BASH_REMATCH[3]%/}"
    prefix="${prefix:+$prefix/}"
    current_key="$(current_key_of "$prefix" "$pkey" "$env_name")"
    log "reading release pointer: s3://$bucket/$current_key"
    aws s3api get-object --bucket "$bucket" --key "$current_key" "$work/current.json" >/dev/null 2>"$work/err" ||
      die "cannot read s3://$bucket/$current_key: $(tail -n 1 "$work/err") (has $project been promoted to $env_name?)"
    fields "$work/current.json" '[j.version, j.artifact.file, j.artifact.sha256, j.artifact.namespace]' "s3://$bucket/$current_key (a release pointer)"
    mapfile -t p <"$work/fields"
    key="$(artifact_key_of "$prefix" "${p[3]}" "$pkey" "${p[0]}" "${p[1]}")"
    pointer_sha="${p[2]}"
    log "pointer: $project@${p[0]} in $env_name -> s3://$bucket/$key"
  else
    die "BUILDONCE_POINTER must be ssm or s3"
  fi
else
  die "nothing to deploy: set DEPLOYMENT_BUCKET and DEPLOYMENT_KEY, or BUILDONCE_ENV"
fi

[[ "$key" =~ ^(.*/)?artifacts/([^/]+)/([0-9]+)/([A-Za-z0-9._-]+)$ ]] ||
  die "key \"$key\" is not an artifact key ([prefix/]artifacts/<project>/<version>/<file>)"
key_prefix="${BASH_REMATCH[1]}" key_project="${BASH_REMATCH[2]}" version="${BASH_REMATCH[3]}" file="${BASH_REMATCH[4]}"
[ "$key_project" = "$pkey" ] || die "key \"$key\" belongs to project key $key_project, not $pkey ($project)"
manifest_key="${key%/*}/manifest.json"
versions_prefix="$(versions_prefix_of "$key_prefix" "$pkey")"

list_newest() {
  local out
  if ! out="$(aws s3api list-objects-v2 --bucket "$bucket" --prefix "$versions_prefix" \
    --query "Contents[?ends_with(Key, '/manifest.json')].[LastModified,Key]" --output text 2>"$work/err")"; then
    log "cannot list s3://$bucket/$versions_prefix: $(tail -n 1 "$work/err")"
    return 0
  fi
  out="$(printf '%s\n' "$out" | grep -v '^None$' | grep . | sort -r | head -n "$newest_count" || true)"
  if [ -z "$out" ]; then
    log "no published versions under s3://$bucket/$versions_prefix"
    return 0
  fi
  log "newest published versions of $project (s3://$bucket/$versions_prefix):"
  local when k
  while read -r when k; do
    k="${k%/manifest.json}"
    log "  ${k##*/}  published $when"
  done <<<"$out"
}

# --- 2. the object and its manifest exist --------------------------------------------------------
log "head-object s3://$bucket/$key"
if ! aws s3api head-object --bucket "$bucket" --key "$key" >"$work/head.json" 2>"$work/err"; then
  if grep -qE '\((404|403|NoSuchKey)\)|Not Found|Forbidden' "$work/err"; then
    log "s3://$bucket/$key does not exist (or is not readable): version $version of $project is not published there"
    list_newest
    exit 1
  fi
  die "head-object s3://$bucket/$key failed: $(tail -n 1 "$work/err")"
fi
if ! aws s3api get-object --bucket "$bucket" --key "$manifest_key" "$work/manifest.json" >/dev/null 2>"$work/err"; then
  log "s3://$bucket/$manifest_key is missing: version $version is not (completely) published: $(tail -n 1 "$work/err")"
  list_newest
  exit 1
fi

# --- 3. download and verify ----------------------------------------------------------------------
fields "$work/manifest.json" "[j.manifest.project, j.manifest.version, j.manifest.kind, j.manifest.entry || 'main.js', j.manifest.runtime, (j.manifest.files.find(f => f.name === '$file') || {}).size, (j.manifest.files.find(f => f.name === '$file') || {}).sha256, j.publish && j.publish.commit || '']" \
  "s3://$bucket/$manifest_key (a buildonce manifest)"
mapfile -t m <"$work/fields"
m_project="${m[0]}" m_version="${m[1]}" kind="${m[2]}" entry="${m[3]}" runtime="${m[4]}" want_size="${m[5]}" want_sha="${m[6]}" commit="${m[7]}"
[[ "$m_project" == "$project" && "$m_version" == "$version" ]] || die "manifest s3://$bucket/$manifest_key describes $m_project@$m_version, not $project@$version"
[[ -n "$want_sha" && -n "$want_size" ]] || die "manifest s3://$bucket/$manifest_key does not list $file"
[ "$kind" = "node-tarball" ] || die "$project@$version is a $kind, this script deploys node-tarball artifacts"
[[ "$entry" =~ ^[A-Za-z0-9._-]+$ ]] || die "manifest entry \"$entry\" is not a plain file name"
if [ -n "$pointer_sha" ] && [ "$pointer_sha" != "$want_sha" ]; then
  die "the release pointer says sha256 $pointer_sha but the manifest says $want_sha: refusing to deploy"
fi
log "manifest: $project@$version $kind entry=$entry runtime=$runtime ${commit:+commit=$commit }size=$want_size sha256=$want_sha"

if [[ "$runtime" =~ ^node\>=([0-9]+) ]]; then
  have_major="$("$node_bin" -p 'process.versions.node.split(".")[0]')"
  [ "$have_major" -ge "${BASH_REMATCH[1]}" ] || die "$node_bin is Node $have_major but $project@$version needs $runtime; current release untouched"
fi

log "downloading s3://$bucket/$key"
aws s3api get-object --bucket "$bucket" --key "$key" "$work/$file" >/dev/null 2>"$work/err" ||
  die "download of s3://$bucket/$key failed: $(tail -n 1 "$work/err")"
got_size="$(stat -c %s "$work/$file")"
got_sha="$(sha256sum "$work/$file" | cut -d' ' -f1)"
previous="$(readlink "$root/current" 2>/dev/null || true)"
if [ "$got_size" != "$want_size" ] || [ "$got_sha" != "$want_sha" ]; then
  log "CHECKSUM MISMATCH for s3://$bucket/$key: got $got_size bytes sha256 $got_sha, manifest says $want_size bytes sha256 $want_sha"
  die "refusing to deploy $project@$version; nothing changed (current -> ${previous:-none})"
fi
log "verified $file: $got_size bytes, sha256 $got_sha"

# --- 4. unpack -----------------------------------------------------------------------------------
# The deploy tar policy, the same rules as ArchivePolicy's `deploy` profile (libs/artifact/src/archive-policy.ts) that deployLocal
# applies: only files, directories and symlinks that stay inside the release (resolved through the
# archive's earlier symlinks); no absolute or .. names, hard links, devices, over-long names, .buildonce/.
# Checked before anything is unpacked: a refused archive writes nothing.
check_tarball() {
  "$node_bin" - "$1" <<'JS'
// Deploy tar policy (the same rules as the `deploy` profile of ArchivePolicy in libs/artifact/src/archive-policy.ts): prints the first
// refused entry's reason and exits 1, or exits 0. Streams the .tar.gz (ustar + pax + GNU long names).
const fs = require('fs'), zlib = require('zlib');
const KIND = { '0': 'file', '\0': 'file', '7': 'contiguous file', '1': 'hard link', '2': 'symlink', '3': 'character device', '4': 'block device', '5': 'directory', '6': 'fifo' };
const symlinks = new Map(), seen = new Map(), traversed = new Set();
const q = (s) => JSON.stringify(s.length > 120 ? s.slice(0, 117) + '...' : s);
function resolve(base, target) {
  const cur = base.slice(), queue = target.split('/');
  let expansions = 0;
  while (queue.length) {
    const seg = queue.shift();
    if (seg === '' || seg === '.') continue;
    if (seg === '..') { if (!cur.length) return 'leaves'; cur.pop(); continue; }
    const key = [...cur, seg].join('/');
    if (!symlinks.has(key)) { traversed.add(key); cur.push(seg); continue; }
    if (++expansions > 40) return 'loops';
    queue.unshift(...symlinks.get(key).split('/'));
  }
  return cur;
}
function check(path, kind, linkpath) {
  const shown = q(path);
  if (kind !== 'file' && kind !== 'directory' && kind !== 'symlink') return `${shown} is a ${kind || 'special entry'}${linkpath ? ` (-> ${JSON.stringify(linkpath)})` : ''}: only files, directories and symlinks are allowed`;
  if (path.includes('\0')) return `${shown} contains a NUL byte`;
  if (path.startsWith('/')) return `${shown} is an absolute path`;
  if (Buffer.byteLength(path) > 4095) return `${shown} is longer than 4095 bytes`;
  const raw = path.split('/');
  if (raw.includes('..')) return `${shown} contains a ".." segment`;
  const segs = raw.filter((s) => s !== '' && s !== '.');
  if (!segs.length) return kind === 'directory' && path ? null : `${shown} has no name`;
  if (segs.some((s) => Buffer.byteLength(s) > 255)) return `${shown} has a name segment longer than 255 bytes`;
  if (segs[0] === '.buildonce') return `${shown} is under .buildonce/, which deploys reserve for the manifest`;
  for (let i = 1; i < segs.length; i++) {
    const parent = segs.slice(0, i).join('/');
    if (symlinks.has(parent)) return `${shown} is placed through the symlink ${JSON.stringify(parent)}`;
    if (seen.has(parent) && seen.get(parent) !== 'directory') return `${shown} needs ${JSON.stringify(parent)} to be a directory, but it is a ${seen.get(parent)}`;
  }
  const p = segs.join('/');
  const before = seen.get(p);
  if (before !== undefined && !(before === 'directory' && kind === 'directory')) return `${shown} appears twice (a ${before}, then a ${kind})`;
  if (kind === 'symlink') {
    if (!linkpath) return `symlink ${shown} has an empty target`;
    if (linkpath.includes('\0')) return `symlink ${shown} has a NUL byte in its target`;
    if (linkpath.startsWith('/')) return `symlink ${shown} -> ${JSON.stringify(linkpath)} is absolute: it points outside the release`;
    if (traversed.has(p)) return `symlink ${shown} replaces a directory that earlier entries use`;
    const r = resolve(segs.slice(0, -1), linkpath);
    if (typeof r === 'string') return `symlink ${shown} -> ${JSON.stringify(linkpath)} ${r === 'loops' ? 'loops (more than 40 symlinks to follow)' : 'points outside the release'} (resolved through the archive's earlier symlinks)`;
    symlinks.set(p, linkpath);
  }
  for (let i = 1; i < segs.length; i++) traversed.add(segs.slice(0, i).join('/'));
  seen.set(p, kind);
  return null;
}
const cstr = (b) => { const i = b.indexOf(0); return b.subarray(0, i < 0 ? b.length : i).toString('utf8'); };
function num(b) {
  if (b[0] & 0x80) { let n = 0; for (let i = 1; i < b.length; i++) n = n * 256 + b[i]; return n; }
  const s = cstr(b).trim();
  return s ? parseInt(s, 8) : 0;
}
function pax(body) {
  const out = {};
  let i = 0;
  while (i < body.length) {
    const sp = body.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(body.subarray(i, sp).toString(), 10);
    if (!(len > 0)) break;
    const rec = body.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}
let buf = Buffer.alloc(0), skip = 0, need = 0, meta = null, next = {}, done = false;
function fail(msg) { process.stdout.write(msg + '\n'); process.exit(1); }
function feed(chunk) {
  buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
  for (;;) {
    if (done) return;
    if (skip) { const n = Math.min(skip, buf.length); buf = buf.subarray(n); skip -= n; if (skip) return; }
    if (meta) {
      if (buf.length < need) return;
      const body = buf.subarray(0, meta.size);
      buf = buf.subarray(need);
      if (meta.type === 'x') Object.assign(next, pax(body));
      else if (meta.type === 'L') next.path = cstr(body);
      else if (meta.type === 'K') next.linkpath = cstr(body);
      meta = null;
      continue;
    }
    if (buf.length < 512) return;
    const h = buf.subarray(0, 512);
    buf = buf.subarray(512);
    if (h.every((b) => b === 0)) { done = true; return; }
    const type = String.fromCharCode(h[156]);
    const size = num(h.subarray(124, 136));
    const padded = Math.ceil(size / 512) * 512;
    if (type === 'x' || type === 'L' || type === 'K') { meta = { type, size }; need = padded; continue; }
    if (type === 'g') { skip = padded; continue; }
    const ustar = h.subarray(257, 262).toString() === 'ustar';
    const prefix = ustar ? cstr(h.subarray(345, 500)) : '';
    const name = cstr(h.subarray(0, 100));
    const path = next.path !== undefined ? next.path : prefix ? `${prefix}/${name}` : name;
    const linkpath = next.linkpath !== undefined ? next.linkpath : cstr(h.subarray(157, 257));
    next = {};
    const why = check(path, KIND[type], linkpath);
    if (why) fail(why);
    skip = padded;
  }
}
const gunzip = zlib.createGunzip();
gunzip.on('data', feed);
gunzip.on('error', (e) => fail(`not a readable .tar.gz (${e.message})`));
gunzip.on('end', () => process.exit(done || buf.length === 0 ? 0 : 1));
fs.createReadStream(process.argv[process.argv.length - 1]).on('error', (e) => fail(e.message)).pipe(gunzip);
JS
}
# The tree GNU tar extracted (into a fresh private directory), judged on disk with lstat/readlink, so no
# parser can disagree with the extractor: only regular files (one link each), directories and symlinks
# whose resolution, component by component through the links on disk (as the kernel reads them), stays
# inside the release. Prints the first problem and exits 1.
check_tree() {
  "$node_bin" - "$1" <<'JS'
const fs = require('fs'), path = require('path');
const root = fs.realpathSync(process.argv[process.argv.length - 1]);
const fail = (m) => { process.stdout.write(m + '\n'); process.exit(1); };
function resolve(dir, target) {
  const cur = target.startsWith('/') ? [] : dir.split('/').filter(Boolean);
  const queue = target.split('/');
  let n = 0;
  while (queue.length) {
    const c = queue.shift();
    if (c === '' || c === '.') continue;
    if (c === '..') { cur.pop(); continue; }
    const p = '/' + [...cur, c].join('/');
    let st;
    try { st = fs.lstatSync(p); } catch { cur.push(c); continue; }
    if (!st.isSymbolicLink()) { cur.push(c); continue; }
    if (++n > 40) return undefined;
    const t = fs.readlinkSync(p);
    if (t.startsWith('/')) cur.length = 0;
    queue.unshift(...t.split('/'));
  }
  return '/' + cur.join('/');
}
(function walk(dir) {
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name), rel = path.relative(root, p), st = fs.lstatSync(p);
    if (st.isSymbolicLink()) {
      const t = fs.readlinkSync(p), r = resolve(dir, t);
      if (r === undefined) fail(`symlink ${rel} -> ${t} loops`);
      if (r !== root && !r.startsWith(root + '/')) fail(`symlink ${rel} -> ${t} resolves outside the release (${r})`);
    } else if (st.isDirectory()) walk(p);
    else if (!st.isFile()) fail(`${rel} is not a regular file, directory or symlink`);
    else if (st.nlink > 1) fail(`${rel} is a hard link`);
  }
})(root);
JS
}
case "$file" in
  *.tar.gz|*.tgz)
    reason="$(check_tarball "$work/$file" 2>&1)" || die "refused $file: ${reason:-unreadable archive}; nothing changed (current -> ${previous:-none})"
    ;;
esac
if [ -e "$root/current" ] && [ ! -L "$root/current" ]; then
  die "$root/current exists and is not a symlink: move it away"
fi
release="$root/releases/$version"
if [ -d "$release" ]; then
  [ -f "$release/.buildonce/manifest.json" ] || die "$release exists but has no .buildonce/manifest.json: it was not made by a deploy, remove it"
  log "$release already unpacked"
else
  tmp="$root/releases/.$version.tmp-$$"
  rm -rf "$tmp"
  mkdir -m 700 "$tmp"
  case "$file" in
    *.tar.gz|*.tgz)
      tar -xzf "$work/$file" -C "$tmp" --no-same-owner --no-overwrite-dir || { rm -rf "$tmp"; die "cannot unpack $file"; }
      # the extractor's result is what is judged: a second parser may read the archive differently
      reason="$(check_tree "$tmp" 2>&1)" || { rm -rf "$tmp"; die "refused $file: ${reason:-unreadable release tree}; nothing changed (current -> ${previous:-none})"; }
      chmod 755 "$tmp"
      ;;
    *) cp "$work/$file" "$tmp/$file" ;;
  esac
  if [ -e "$tmp/.buildonce" ] || [ -L "$tmp/.buildonce" ]; then rm -rf "$tmp"; die "the artifact contains .buildonce, which deploys reserve for the manifest"; fi
  [ -f "$tmp/$entry" ] || { rm -rf "$tmp"; die "the artifact has no $entry"; }
  mkdir "$tmp/.buildonce"
  cp "$work/manifest.json" "$tmp/.buildonce/manifest.json"
  if ! mv -T "$tmp" "$release" 2>/dev/null; then
    rm -rf "$tmp"
    [ -f "$release/.buildonce/manifest.json" ] || die "cannot move the release into $release"
  fi
  sync -f "$root/releases" 2>/dev/null || true
  log "unpacked into $release"
fi

# --- 5. flip current -----------------------------------------------------------------------------
if [ "$previous" = "releases/$version" ]; then
  log "$root/current already points at releases/$version"
else
  ln -sfn "releases/$version" "$root/.current.tmp-$$"
  mv -T "$root/.current.tmp-$$" "$root/current"
  log "$root/current -> releases/$version (previous: ${previous:-none})"
fi

# atomically points current at $1 (releases/<version>)
flip_to() {
  ln -sfn "$1" "$root/.current.tmp-$$"
  mv -T "$root/.current.tmp-$$" "$root/current"
}

# --- 7. prune: newest $keep releases by unpack time stay, and current and previous always ----------
prune_releases() {
  local cur prev n=0 d
  cur="$(readlink "$root/current" 2>/dev/null || true)"
  prev="${previous:-}"
  while IFS= read -r d; do
    [ -n "$d" ] || continue
    n=$((n + 1))
    case "releases/$d" in "$cur"|"$prev") continue ;; esac
    [ "$n" -le "$keep" ] && continue
    [ -f "$root/releases/$d/.buildonce/manifest.json" ] || continue # not made by a deploy: leave it
    rm -rf "${root:?}/releases/$d"
    log "pruned releases/$d (keeping the newest $keep, current and previous)"
  done < <(cd "$root/releases" && ls -1t --ignore='.*' 2>/dev/null)
  return 0
}

# waits up to $health_timeout s for GET /health to report version $1; prints the last body
healthy() {
  local want="$1" deadline body=""
  deadline=$(($(date +%s) + health_timeout))
  until body="$(curl -fsS -m 2 "http://127.0.0.1:$port/health" 2>/dev/null)" && [[ "$body" == *"\"version\":\"$want\""* ]]; do
    [ "$(date +%s)" -lt "$deadline" ] || { printf '%s' "${body:-no answer}"; return 1; }
    sleep 1
  done
  printf '%s' "$body"
}

# --- 6. start ------------------------------------------------------------------------------------
case "$mode" in
  none)
    log "--no-start: not starting the service"
    prune_releases
    ;;
  foreground)
    prune_releases
    cleanup
    trap - EXIT
    exec 9>&- # release the deploy lock: the service must not hold it
    log "starting $node_bin $root/current/$entry in the foreground (PORT=$port)"
    cd "$release"
    PORT="$port" NODE_ENV="${NODE_ENV:-production}" exec "$node_bin" --enable-source-maps "$root/current/$entry"
    ;;
  systemd)
    systemctl_bin="${BUILDONCE_SYSTEMCTL:-systemctl}"
    unit="$systemd_dir/$project.service"
    mkdir -p "$systemd_dir"
    cat >"$work/unit" <<EOF
# written by the buildonce user data of $project; the release is $root/current
[Unit]
Description=$project (buildonce release in $root/current)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
WorkingDirectory=$root/current
Environment=NODE_ENV=production
Environment=PORT=$port
ExecStart=$node_bin --enable-source-maps $root/current/$entry
Restart=on-failure
RestartSec=2
KillSignal=SIGTERM
TimeoutStopSec=30
DynamicUser=yes
NoNewPrivileges=yes

[Install]
WantedBy=multi-user.target
EOF
    if ! cmp -s "$work/unit" "$unit"; then
      cp "$work/unit" "$unit.tmp-$$" && mv -f "$unit.tmp-$$" "$unit"
      log "wrote $unit"
    fi
    "$systemctl_bin" daemon-reload
    "$systemctl_bin" enable "$project.service"
    "$systemctl_bin" restart "$project.service"
    log "systemctl restart $project.service"
    if [ "$health_timeout" -gt 0 ]; then
      command -v curl >/dev/null 2>&1 || die "curl not found for the health check (use --health-timeout 0 to skip it)"
      if body="$(healthy "$version")"; then
        log "healthy: $body"
      else
        reason="GET http://127.0.0.1:$port/health did not report version $version within ${health_timeout}s (last: $body)"
        if [ -z "$previous" ] || [ "$previous" = "releases/$version" ] || [ ! -d "$root/$previous" ]; then
          die "$reason; no previous release to go back to; see journalctl -u $project"
        fi
        log "$reason: flipping back to $previous"
        flip_to "$previous"
        "$systemctl_bin" restart "$project.service"
        if back="$(healthy "${previous#releases/}")"; then log "previous release healthy again: $back"; else log "previous release did not report healthy either (last: $back)"; fi
        die "$project@$version failed its health check ($reason); reverted current -> $previous and restarted it; see journalctl -u $project"
      fi
    fi
    prune_releases
    ;;
esac
log "done: $project@$version"
