import { describe, expect, it } from 'vitest';
import { ConfigError } from '@buildonce/errors';
import { parseConfig } from '@buildonce/config';
import { prepareMeasuredCheck } from './measure-prepare';

const env = (verify: unknown, strategy?: unknown) => ({ environments: [{ name: 'dev' }, { name: 'staging', verify, ...(strategy ? { strategy } : {}) }] });
const problem = (verify: unknown, strategy?: unknown) => {
  try {
    parseConfig(env(verify, strategy), 'buildonce.json');
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
};

describe('alarm and metric checks in buildonce.json', () => {
  it('accepts the documented shapes and normalises the canary to steps', () => {
    const c = parseConfig(
      env(
        [
          { kind: 'alarm', alarmPrefix: '{project}-{env}-', intervalSeconds: 30 },
          { kind: 'metric', metric: 'errorRate', max: 0.01, maxIncrease: 0.005, minSamples: 50, failureLimit: 1, onInconclusive: 'hold' },
        ],
        {
          canary: {
            steps: [
              { percent: 10, minutes: 5 },
              { percent: 50, minutes: 5 },
            ],
          },
        },
      ),
    );
    expect(c.environments[1]!.strategy).toEqual({
      canary: {
        percent: 10,
        minutes: 5,
        steps: [
          { percent: 10, minutes: 5 },
          { percent: 50, minutes: 5 },
        ],
      },
    });
    const single = parseConfig(env([{ kind: 'command', command: ['true'] }], { canary: { percent: 10, minutes: 5 } }));
    expect(single.environments[1]!.strategy?.canary.steps).toEqual([{ percent: 10, minutes: 5 }]);
  });
  it('refuses what cannot be measured, naming the field', () => {
    expect(problem({ kind: 'alarm' })).toBe('buildonce.json: environments.1.verify.0.alarms: name the alarms ("alarms": [...]) or a prefix ("alarmPrefix")');
    expect(problem({ kind: 'metric', metric: 'errorRate' })).toMatch(/verify\.0\.max: give a threshold/);
    expect(problem({ kind: 'metric', metric: 'errorRate', maxIncrease: 0.01 })).toMatch(/verify\.0\.maxIncrease: .*needs "strategy"/);
    expect(problem({ kind: 'metric', metric: 'errorRate', query: { namespace: 'a', metricName: 'b' }, max: 1 })).toMatch(/exactly one of/);
    expect(problem({ kind: 'metric', query: { namespace: 'a', metricName: 'b' }, maxIncrease: 1 }, { canary: { percent: 10, minutes: 1 } })).toMatch(
      /\{executedVersion\}/,
    );
    expect(problem({ kind: 'metric', metric: 'duration', max: 500, periodSeconds: 45 })).toMatch(/periodSeconds: must be/);
    expect(problem({ kind: 'metric', metric: 'errorRate', max: 0.01, failureLimit: -1 })).toMatch(/failureLimit/);
    expect(problem({ kind: 'alarm', alarms: ['a'], failureLimit: 1 })).toMatch(/failureLimit/); // ALARM fails at once
    expect(problem({ kind: 'command', command: ['x'] }, { canary: { steps: [] } })).toMatch(/steps/);
  });
  it('prepare: built-ins need the lambda target, CloudWatch does not see the local one, unknown placeholders refuse', () => {
    const lines: string[] = [];
    const o = (targetKind: 'lambda' | 'ec2' | 'local') => ({ targetKind, log: (l: string) => lines.push(l), describe: 'check' });
    expect(prepareMeasuredCheck({ kind: 'metric', metric: 'errorRate', max: 1 }, o('lambda'))).toBe(true);
    expect(prepareMeasuredCheck({ kind: 'metric', metric: 'errorRate', max: 1 }, o('ec2'))).toBe(false);
    expect(prepareMeasuredCheck({ kind: 'alarm', alarms: ['{project}-x'] }, o('local'))).toBe(false);
    expect(lines).toEqual([
      'verify: check skipped: the errorRate built-in reads Lambda metrics and the target is ec2',
      'verify: check skipped: CloudWatch does not see the local target',
    ]);
    expect(() => prepareMeasuredCheck({ kind: 'alarm', alarms: ['{service}-errors'] }, o('ec2'))).toThrow(
      /unknown placeholder \{service\} in "\{service\}-errors": use \{project\}, \{env\}, \{version\}/,
    );
    expect(() =>
      prepareMeasuredCheck({ kind: 'metric', query: { namespace: 'a', metricName: 'b', dimensions: { F: '{functionName}' } }, max: 1 }, o('ec2')),
    ).toThrow(ConfigError);
  });
});
