import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

/**
 * The properties of the one exported interface of a schema.d.ts, inherited ones included (an executor's type may
 * extend the options it shares with others): the type checker resolves `extends` across files, and each property
 * is judged by the type node it is declared with.
 */
function typeProperties(path: string, program = ts.createProgram([path], compilerOptions())): Record<string, TypeProperty> {
  const sf = program.getSourceFile(path);
  if (!sf) throw new Error(`${path}: not in the program`);
  const decls = sf.statements.filter((s) => ts.isInterfaceDeclaration(s) && s.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword));
  if (decls.length !== 1) throw new Error(`${path}: expected one exported interface, found ${decls.length}`);
  const checker = program.getTypeChecker();
  const type = checker.getTypeAtLocation((decls[0] as ts.InterfaceDeclaration).name);
  const props: Record<string, TypeProperty> = {};
  for (const symbol of checker.getPropertiesOfType(type)) {
    const m = symbol.valueDeclaration;
    if (!m || !ts.isPropertySignature(m) || !m.type) throw new Error(`${path}: ${symbol.name} is not declared as a typed property`);
    const literals: string[] = [];
    const kinds = kindsOf(m.type, literals);
    const onlyLiterals = literals.length > 0 && kinds.size === 1 && kinds.has('string') && !m.type.getText().includes('string');
    props[symbol.name] = { optional: !!m.questionToken, kinds, ...(onlyLiterals ? { literals } : {}) };
  }
  return props;
}

/** The executors project's compiler options (how its sources resolve the `@buildonce/*` libs). */
function compilerOptions(): ts.CompilerOptions {
  const project = join(dir, '../../tsconfig.json');
  const { config } = ts.readConfigFile(project, ts.sys.readFile);
  return { ...ts.parseJsonConfigFileContent(config, ts.sys, join(dir, '../..')).options, noEmit: true };
}

/** {@link typeProperties} of a schema.d.ts written from `source` (for the check's own test). */
function typePropertiesOf(source: string): Record<string, TypeProperty> {
  const d = mkdtempSync(join(tmpdir(), 'schema-types-'));
  try {
    writeFileSync(join(d, 'schema.d.ts'), source);
    return typeProperties(join(d, 'schema.d.ts'));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
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

  // one program for every schema.d.ts: type-checking the libs they import once, not per executor
  const typeFiles = executors.map((name) => join(dir, name, 'schema.d.ts'));
  let program: ts.Program | undefined;

  it.each(executors)('%s: same names, optionality and primitive types', (name) => {
    const schema = JSON.parse(readFileSync(join(dir, name, 'schema.json'), 'utf8'));
    program ??= ts.createProgram(typeFiles, compilerOptions());
    const types = typeProperties(join(dir, name, 'schema.d.ts'), program);
    expect(schemaMismatches(schema, types)).toEqual([]);
  });

  it('the check can fail', () => {
    const schema = {
      properties: { env: { type: 'string' }, keep: { type: 'integer', default: 10 }, mode: { type: 'string', enum: ['a', 'b'] }, gone: { type: 'boolean' } },
      required: ['env'],
    };
    const types = typePropertiesOf("interface Base { env?: string; keep: string }\nexport interface S extends Base { mode?: 'a' | 'c'; extra?: string }");
    expect(schemaMismatches(schema, types)).toEqual([
      'gone: in schema.json, missing from schema.d.ts',
      'extra: in schema.d.ts, missing from schema.json',
      'env: required or defaulted in schema.json but optional in schema.d.ts',
      'keep: schema.json type integer, schema.d.ts admits string',
      'mode: schema.d.ts literals a, c differ from schema.json enum a, b',
    ]);
  });
});
