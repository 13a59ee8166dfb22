/**
 * Where the time of one piece of work went, step by step, for its log line (an environment start:
 * status, guard, home, prepare, engine).
 */
export class PhaseTimer {
  private last: number;
  private readonly spent: Record<string, number> = {};

  constructor(private readonly now: () => number = Date.now) {
    this.last = now();
  }

  lap(name: string): void {
    const at = this.now();
    this.spent[name] = (this.spent[name] ?? 0) + (at - this.last);
    this.last = at;
  }

  laps(): Readonly<Record<string, number>> {
    return { ...this.spent };
  }
}
