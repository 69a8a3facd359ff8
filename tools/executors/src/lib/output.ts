import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fromWorkspace } from './context';

/**
 * A `print` for machine output: stdout, and with `outputFile` (workspace-relative or absolute) the same
 * text written to that file (replaced atomically, parent directories created) so scripts can read it
 * without nx's own stdout lines.
 */
export function machinePrinter(workspaceRoot: string, outputFile: string | undefined): (text: string) => void {
  const file = outputFile ? fromWorkspace(workspaceRoot, outputFile) : undefined;
  return (text: string) => {
    console.log(text);
    if (!file) return;
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, text.endsWith('\n') ? text : `${text}\n`);
    renameSync(tmp, file);
  };
}
