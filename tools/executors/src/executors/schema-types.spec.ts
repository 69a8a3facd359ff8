import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * Each executor's `schema.json` is the contract Nx validates options against; its `schema.d.ts` is the type
 * the executor reads them as. This keeps the two from drifting: the same property names, a property is
 * non-optional in the type exactly when the schema requires it or gives it a default (Nx applies defaults
 * before the executor runs), and the type admits the schema's primitive (string/number/boolean/array/object;
 * string literal unions list exactly the schema's `enum`).
 */
type Kind = 'string' | 'number' | 'boolean' | 'array' | 'object';
interface JsonProperty {
  type?: string;
  enum?: unknown[];
  default?: unknown;
}
interface TypeProperty {
  optional: boolean;
  kinds: Set<Kind>;
  /** string literal values when the type is a union of string literals only */
  literals?: string[];
}

const dir = __dirname;

function kindsOf(node: ts.TypeNode, literals: string[]): Set<Kind> {
  const out = new Set<Kind>();
  const visit = (n: ts.TypeNode): void => {
    if (ts.isUnionTypeNode(n)) return n.types.forEach(visit);
    if (ts.isParenthesizedTypeNode(n)) return visit(n.type);
    if (n.kind === ts.SyntaxKind.StringKeyword) out.add('string');
    else if (n.kind === ts.SyntaxKind.NumberKeyword) out.add('number');
    else if (n.kind === ts.SyntaxKind.BooleanKeyword) out.add('boolean');
    else if (ts.isLiteralTypeNode(n)) {
      if (ts.isStringLiteral(n.literal)) {
        out.add('string');
        literals.push(n.literal.text);
      } else if (ts.isNumericLiteral(n.literal)) out.add('number');
      else out.add('boolean');
    } else if (ts.isArrayTypeNode(n) || (ts.isTypeOperatorNode(n) && ts.isArrayTypeNode(n.type))) out.add('array');
    else if (ts.isTypeLiteralNode(n)) out.add('object');
    else if (ts.isTypeReferenceNode(n)) {
      const name = n.typeName.getText();
      out.add(name === 'Array' || name === 'ReadonlyArray' ? 'array' : 'object');
    }
  };
  visit(node);
  return out;
}

/** The properties of the one exported interface of a schema.d.ts. */
function typeProperties(source: string, file = 'schema.d.ts'): Record<string, TypeProperty> {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, true);
  const decls = sf.statements.filter(ts.isInterfaceDeclaration);
  if (decls.length !== 1) throw new Error(`${file}: expected one interface, found ${decls.length}`);
  const props: Record<string, TypeProperty> = {};
  for (const m of decls[0]!.members) {
    if (!ts.isPropertySignature(m) || !m.type) continue;
    const literals: string[] = [];
    const kinds = kindsOf(m.type, literals);
    const onlyLiterals = literals.length > 0 && kinds.size === 1 && kinds.has('string') && !m.type.getText().includes('string');
    props[m.name.getText()] = { optional: !!m.questionToken, kinds, ...(onlyLiterals ? { literals } : {}) };
  }
  return props;
}

/** Every disagreement between a schema.json and a schema.d.ts, one line each. */
function schemaMismatches(schema: { properties?: Record<string, JsonProperty>; required?: string[] }, types: Record<string, TypeProperty>): string[] {
  const problems: string[] = [];
  const props = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  for (const name of Object.keys(props)) if (!(name in types)) problems.push(`${name}: in schema.json, missing from schema.d.ts`);
  for (const name of Object.keys(types)) if (!(name in props)) problems.push(`${name}: in schema.d.ts, missing from schema.json`);
  for (const [name, p] of Object.entries(props)) {
    const t = types[name];
    if (!t) continue;
    const alwaysSet = required.has(name) || 'default' in p;
    if (t.optional === alwaysSet)
      problems.push(
        `${name}: ${alwaysSet ? 'required or defaulted in schema.json but optional' : 'neither required nor defaulted in schema.json but not optional'} in schema.d.ts`,
      );
    const kind = (p.type === 'integer' ? 'number' : p.type) as Kind | undefined;
    if (kind && !t.kinds.has(kind)) problems.push(`${name}: schema.json type ${p.type}, schema.d.ts admits ${[...t.kinds].join(' | ') || 'none'}`);
    if (t.literals && p.enum && [...t.literals].sort().join('|') !== p.enum.map(String).sort().join('|'))
      problems.push(`${name}: schema.d.ts literals ${t.literals.join(', ')} differ from schema.json enum ${p.enum.join(', ')}`);
    if (t.literals && !p.enum) problems.push(`${name}: schema.d.ts lists literals ${t.literals.join(', ')}, schema.json has no enum`);
  }
  return problems;
}

describe('executor schema.d.ts against schema.json', () => {
  const executors = readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'schema.json')))
    .map((d) => d.name);

  it('finds the executors', () => {
    expect(executors.length).toBeGreaterThanOrEqual(9);
  });

  it.each(executors)('%s: same names, optionality and primitive types', (name) => {
    const schema = JSON.parse(readFileSync(join(dir, name, 'schema.json'), 'utf8'));
    const types = typeProperties(readFileSync(join(dir, name, 'schema.d.ts'), 'utf8'), `${name}/schema.d.ts`);
    expect(schemaMismatches(schema, types)).toEqual([]);
  });

  it('the check can fail', () => {
    const schema = {
      properties: { env: { type: 'string' }, keep: { type: 'integer', default: 10 }, mode: { type: 'string', enum: ['a', 'b'] }, gone: { type: 'boolean' } },
      required: ['env'],
    };
    const types = typeProperties("export interface S { env?: string; keep: string; mode?: 'a' | 'c'; extra?: string }");
    expect(schemaMismatches(schema, types)).toEqual([
      'gone: in schema.json, missing from schema.d.ts',
      'extra: in schema.d.ts, missing from schema.json',
      'env: required or defaulted in schema.json but optional in schema.d.ts',
      'keep: schema.json type integer, schema.d.ts admits string',
      'mode: schema.d.ts literals a, c differ from schema.json enum a, b',
    ]);
  });
});
