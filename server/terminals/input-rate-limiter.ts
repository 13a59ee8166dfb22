/**
 * Token buckets for one connection's input: frames per second and bytes per second, each with a
 * burst. Generous enough for fast typing and large pastes; a flood from a script trips it.
 */
export interface InputRateLimits {
  readonly framesPerS: number;
  readonly frameBurst: number;
  readonly bytesPerS: number;
  readonly byteBurst: number;
}

export const defaultInputRateLimits: InputRateLimits = {
  framesPerS: 1000,
  frameBurst: 4000,
  bytesPerS: 512 * 1024,
  byteBurst: 2 * 1024 * 1024,
};

export class InputRateLimiter {
  private frames: number;
  private bytes: number;
  private last: number;

  constructor(
    private readonly limits: InputRateLimits = defaultInputRateLimits,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.frames = limits.frameBurst;
    this.bytes = limits.byteBurst;
    this.last = now();
  }

  /** Takes one frame of `size` bytes; false when the connection is over its limit. */
  take(size: number): boolean {
    const now = this.now();
    const elapsedS = Math.max(0, now - this.last) / 1000;
    this.last = now;
    this.frames = Math.min(this.limits.frameBurst, this.frames + elapsedS * this.limits.framesPerS);
    this.bytes = Math.min(this.limits.byteBurst, this.bytes + elapsedS * this.limits.bytesPerS);
    this.frames -= 1;
    this.bytes -= size;
    return this.frames >= 0 && this.bytes >= 0;
  }
}
