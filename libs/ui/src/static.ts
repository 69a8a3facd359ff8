import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import pLimit from 'p-limit';
import { ConfigError } from '@buildonce/errors';
import type { HistoryEntry } from '@buildonce/ledger';
import { CSS, JS } from './assets';
import { discoverLedgers, loadDiff, loadHistory, loadPipeline, loadVersion, type DashboardSource } from './model';
import { diffPage, historyPage, paths, pipelinePage, versionPage } from './pages';
import type { EnvironmentName, ProjectName, Version } from '@buildonce/values';

/** What a static export wrote. */
export interface StaticSiteResult {
  dir: string;
  /** pages written (HTML files) */
  pages: number;
}

/**
 * Writes the dashboard as a static site into `dir` (the same pages and relative links the server
 * renders, without live refresh): the pipeline, every environment's history, every version named in a
 * history, and the diffs the pages link to (each entry's previous → its version, each cell → its
 * upstream's version). Written into a sibling temp directory and renamed into place, so `dir` is
 * never half written; an existing `dir` is replaced only when it is empty or a previous export.
 * @throws ConfigError when `dir` exists and is not an export (holds files but no index.html)
 */
export async function writeStaticSite(src: DashboardSource, dir: string, o: { now?: Date; log?: (line: string) => void } = {}): Promise<StaticSiteResult> {
  const target = resolve(dir);
  if (existsSync(target) && readdirSync(target).length && !existsSync(join(target, 'index.html'))) {
    throw new ConfigError(`--static=${dir} holds files that are not a dashboard export: name an empty or new directory`);
  }
  const now = o.now ?? new Date();
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${Date.now()}`);
  let pages = 0;
  const write = (rel: string, body: string) => {
    const p = join(tmp, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, body);
    if (rel.endsWith('.html')) pages++;
  };
  try {
    write('assets/ui.css', CSS);
    write('assets/ui.js', JS);
    const pipeline = await loadPipeline(src, now);
    write(paths.pipeline(), pipelinePage(pipeline));
    const limit = pLimit(8);
    const versions = new Map<ProjectName, Set<Version>>();
    const diffs = new Map<ProjectName, Set<string>>();
    const want = <V extends string>(m: Map<ProjectName, Set<V>>, project: ProjectName, v: V) => {
      let s = m.get(project);
      if (!s) m.set(project, (s = new Set()));
      s.add(v);
    };
    for (const [key, d] of pipeline.drift) {
      const project = key.split('\u0000')[0]! as ProjectName; // a cellKey's first part is the project it was built from
      const cell = pipeline.cells.get(key);
      if (cell?.status === 'current') want(diffs, project, `${cell.entry.version}-${d.upstreamVersion}`);
    }
    const index = pipeline.error ? { projects: new Map<ProjectName, EnvironmentName[]>() } : await discoverLedgers(src.store);
    await Promise.all(
      [...index.projects].flatMap(([project, envs]) =>
        envs.map((env) =>
          limit(async () => {
            const h = await loadHistory(src, project, env);
            write(paths.history(project, env), historyPage(h, now));
            h.entries.forEach((e: HistoryEntry) => {
              want(versions, project, e.version);
              if (e.previousVersion && e.previousVersion !== e.version) want(diffs, project, `${e.previousVersion}-${e.version}`);
            });
          }),
        ),
      ),
    );
    await Promise.all(
      [...versions].flatMap(([project, vs]) =>
        [...vs].map((v) => limit(async () => write(paths.version(project, v), versionPage(await loadVersion(src, project, v), pipeline.storeUrl, now)))),
      ),
    );
    await Promise.all(
      [...diffs].flatMap(([project, pairs]) =>
        [...pairs].map((pair) =>
          limit(async () => {
            const [from, to] = pair.split('-') as [Version, Version]; // built above from two versions
            write(paths.diff(project, from, to), diffPage(await loadDiff(src, project, from, to), pipeline.storeUrl, now));
          }),
        ),
      ),
    );
    rmSync(target, { recursive: true, force: true });
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  o.log?.(`buildonce ui: wrote ${pages} pages to ${target} (open ${join(target, 'index.html')})`);
  return { dir: target, pages };
}
