import { strict as assert } from 'node:assert';
import { lrAt, ScheduleConfig, ScheduleConfigSchema } from '../../src/train/schedule';

function near(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= 1e-12, `${what}: got ${actual}, expected ${expected}`);
}

describe('train/schedule', () => {
  it('cosine: linear warm-up then cosine to min_lr', () => {
    const cfg = ScheduleConfigSchema.parse({ kind: 'cosine', lr: 1.0, warmup_steps: 4, total_steps: 14, min_lr: 0.1 });
    near(lrAt(0, cfg), 0.25, 'step 0 = lr * 1/4');
    near(lrAt(1, cfg), 0.5, 'mid warm-up = lr * 2/4');
    near(lrAt(3, cfg), 1.0, 'last warm-up step = lr');
    near(lrAt(4, cfg), 1.0, 'first cosine step (p = 0)');
    // p = (6 - 4) / 10 = 0.2: 0.1 + 0.9 * 0.5 * (1 + cos(0.2 pi)) = 0.1 + 0.45 * 1.809016994374947
    near(lrAt(6, cfg), 0.9140576474687263, 'p = 0.2');
    near(lrAt(9, cfg), 0.55, 'middle (p = 0.5): 0.1 + 0.45');
    near(lrAt(14, cfg), 0.1, 'end = min_lr');
    near(lrAt(100, cfg), 0.1, 'beyond the end stays at min_lr');
  });

  it('cosine: no warm-up, min_lr 0 by default, total steps from the run', () => {
    const cfg = ScheduleConfigSchema.parse({ kind: 'cosine', lr: 2.0 });
    assert.deepEqual(cfg, { kind: 'cosine', lr: 2.0, warmup_steps: 0, min_lr: 0 });
    near(lrAt(0, cfg, 10), 2.0, 'step 0');
    near(lrAt(5, cfg, 10), 1.0, 'middle');
    near(lrAt(10, cfg, 10), 0, 'end');
    assert.throws(() => lrAt(3, cfg), /needs total_steps/);
  });

  it('step decay: warm-up then multiply by gamma at each milestone', () => {
    const cfg = ScheduleConfigSchema.parse({ kind: 'step', lr: 0.1, warmup_steps: 2, milestones: [5, 8], gamma: 0.5 });
    near(lrAt(0, cfg), 0.05, 'step 0');
    near(lrAt(1, cfg), 0.1, 'end of warm-up');
    near(lrAt(2, cfg), 0.1, 'after warm-up');
    near(lrAt(4, cfg), 0.1, 'before the first milestone');
    near(lrAt(5, cfg), 0.05, 'at the first milestone');
    near(lrAt(7, cfg), 0.05, 'between milestones');
    near(lrAt(8, cfg), 0.025, 'at the second milestone');
    near(lrAt(1000, cfg), 0.025, 'beyond');
  });

  it('constant with warm-up', () => {
    const cfg: ScheduleConfig = ScheduleConfigSchema.parse({ kind: 'constant', lr: 0.3, warmup_steps: 3 });
    near(lrAt(0, cfg), 0.1, 'step 0');
    near(lrAt(2, cfg), 0.3, 'end of warm-up');
    near(lrAt(50, cfg), 0.3, 'later');
  });

  it('the schema rejects unknown keys, bad values and inconsistent settings', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ kind: 'cosine', lr: 1, total_step: 10 }, /Unrecognized key\(s\) in object: 'total_step'/],
      [{ kind: 'cosine', lr: 1, milestones: [3] }, /Unrecognized key/],
      [{ kind: 'linear', lr: 1 }, /Invalid discriminator value/],
      [{ lr: 1 }, /Invalid discriminator value/],
      [{ kind: 'cosine', lr: 0 }, /greater than 0/],
      [{ kind: 'cosine', lr: 1, min_lr: 2 }, /min_lr \(2\) must not exceed lr \(1\)/],
      [{ kind: 'cosine', lr: 1, warmup_steps: 10, total_steps: 10 }, /total_steps \(10\) must exceed warmup_steps \(10\)/],
      [{ kind: 'step', lr: 1, milestones: [5, 5] }, /strictly increasing, found 5 then 5/],
      [{ kind: 'step', lr: 1, warmup_steps: 1.5 }, /Expected integer/],
    ];
    for (const [input, re] of bad) {
      const r = ScheduleConfigSchema.safeParse(input);
      assert.equal(r.success, false, `should reject ${JSON.stringify(input)}`);
      if (!r.success) assert.match(r.error.message, re, JSON.stringify(input));
    }
    assert.throws(() => lrAt(-1, ScheduleConfigSchema.parse({ kind: 'constant', lr: 1 })), /integer >= 0, got -1/);
    assert.throws(() => lrAt(1.5, ScheduleConfigSchema.parse({ kind: 'constant', lr: 1 })), /integer >= 0, got 1.5/);
  });
});
