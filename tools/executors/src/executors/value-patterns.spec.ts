import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENVIRONMENT_NAME_PATTERN } from '@buildonce/values';

/** Every executor option that names an environment uses the one grammar of @buildonce/values (no copy drifts). */
describe('executor schemas use the value grammars of @buildonce/values', () => {
  const dir = __dirname;
  const schemas = readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => ({
      name: d.name,
      schema: JSON.parse(readFileSync(join(dir, d.name, 'schema.json'), 'utf8')) as { properties: Record<string, { type?: string; pattern?: string }> },
    }));

  // an `env` option of type string names an environment (oci-image's `env` object is the image's variables)
  const takesEnvironment = (s: (typeof schemas)[number]) => s.schema.properties.env?.type === 'string';

  it('finds the executors that take --env', () => {
    expect(
      schemas
        .filter(takesEnvironment)
        .map((s) => s.name)
        .sort(),
    ).toEqual(['promote', 'releases', 'resolve', 'rollback']);
  });

  for (const { name, schema } of schemas.filter(takesEnvironment)) {
    it(`${name}: env pattern is ENVIRONMENT_NAME_PATTERN`, () => {
      expect(schema.properties.env!.pattern).toBe(ENVIRONMENT_NAME_PATTERN);
    });
  }
});
