import { describe, expect, it } from 'vitest';
import { ManifestError, imageUriOf, parseManifest, parseManifestJson, parseStoredManifestJson, sameFiles } from './manifest';

const good = {
  schemaVersion: 1,
  project: 'rust-scorer',
  version: '1234567890',
  kind: 'lambda-zip',
  files: [{ name: 'bootstrap.zip', size: 10, sha256: 'a'.repeat(64) }],
  runtime: 'provided.al2023',
  architecture: 'x86_64',
  handler: 'bootstrap',
  toolchain: 'rustc 1.95.0',
};

describe('manifest schema', () => {
  it('accepts a valid manifest', () => {
    expect(parseManifest(good).project).toBe('rust-scorer');
  });
  it('accepts scoped project names (the ts preset names projects @scope/name) and nothing path-like', () => {
    expect(parseManifest({ ...good, project: '@acme/api' }).project).toBe('@acme/api');
    for (const project of ['@acme', '@acme/', '@/api', 'acme/api', '@a/b/c', '../x', '@acme/.x']) {
      expect(() => parseManifest({ ...good, project }), project).toThrow(/project: use "name" or "@scope\/name"/);
    }
  });
  it('names the bad field', () => {
    expect(() => parseManifest({ ...good, version: 'abc' })).toThrow(/version: a version is the decimal Nx task hash/);
    expect(() => parseManifest({ ...good, files: [{ name: '../x', size: 1, sha256: 'a'.repeat(64) }] })).toThrow(/files\.0\.name/);
    expect(() => parseManifest({ ...good, extra: 1 })).toThrow(ManifestError);
    expect(() => parseManifestJson('{', 'dist/x/artifact.json')).toThrow(/dist\/x\/artifact.json: not JSON/);
  });
  it('records the glibc a lambda binary needs (glibcMax), optional for other kinds', () => {
    expect(parseManifest({ ...good, architecture: 'arm64', glibcMax: '2.34' }).glibcMax).toBe('2.34');
    expect(parseManifest(good).glibcMax).toBeUndefined();
    expect(() => parseManifest({ ...good, glibcMax: 'GLIBC_2.34' })).toThrow(/glibcMax: glibcMax is a glibc version such as 2\.34/);
  });
  it('compares files by name, size and sha256', () => {
    const m = parseManifest(good);
    expect(sameFiles(m, m)).toBe(true);
    expect(sameFiles(m, parseManifest({ ...good, files: [{ ...good.files[0], sha256: 'b'.repeat(64) }] }))).toBe(false);
  });
});

describe('oci-image stored manifests: the deployed identity is the verified digest', () => {
  const hex = (n: number) => n.toString(16).padStart(64, '0');
  const image = (seed: number) => {
    const digest = `sha256:${hex(seed)}`;
    const repository = `127.0.0.1:5000/scorer-${seed % 3}`;
    return {
      manifest: {
        ...good,
        kind: 'oci-image',
        handler: undefined,
        files: [{ name: 'image-manifest.json', size: 500, sha256: hex(seed) }],
        image: { digest, platform: 'linux/arm64' },
      },
      publish: { publishedAt: '2026-01-01T00:00:00.000Z', builder: 'local:x', trusted: true },
      registry: { repository, uri: `${repository}@${digest}`, tags: ['1'] },
    };
  };
  it('accepts consistent records and derives the URI from the digest', () => {
    for (let seed = 1; seed < 20; seed++) {
      const s = parseStoredManifestJson(JSON.stringify(image(seed)));
      expect(imageUriOf(s)).toBe(`127.0.0.1:5000/scorer-${seed % 3}@sha256:${hex(seed)}`);
    }
  });
  it('refuses every record whose uri, repository, digest or file sha256 disagree (generated tamperings)', () => {
    // each tampering changes one field to a value that is valid on its own (another digest present in the registry, another repository)
    const tamper: ((s: ReturnType<typeof image>, other: number) => void)[] = [
      (s, o) => (s.registry.uri = `${s.registry.repository}@sha256:${hex(o)}`),
      (s, o) => (s.registry.uri = `127.0.0.1:5000/other-${o}@${s.manifest.image.digest}`),
      (s, o) => (s.registry.repository = `127.0.0.1:5000/other-${o}`),
      (s, o) => (s.manifest.image.digest = `sha256:${hex(o)}`),
      (s, o) => {
        s.manifest.image.digest = `sha256:${hex(o)}`;
        s.registry.uri = `${s.registry.repository}@sha256:${hex(o)}`;
      },
    ];
    let refused = 0;
    for (let seed = 1; seed < 40; seed++) {
      for (const [i, t] of tamper.entries()) {
        const s = image(seed);
        t(s, seed + 1000 + i);
        expect(() => parseStoredManifestJson(JSON.stringify(s), 'm.json'), `tampering ${i} of seed ${seed}`).toThrow(
          /invalid stored manifest m\.json: (registry\.uri|manifest\.image\.digest): /,
        );
        refused++;
      }
    }
    expect(refused).toBe(39 * tamper.length);
  });
});
