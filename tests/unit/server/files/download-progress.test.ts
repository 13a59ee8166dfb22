import { describe, expect, it } from 'vitest';
import { DownloadProgress } from '../../../../server/files/download-progress.js';

describe('DownloadProgress', () => {
  it('counts the bytes of a running copy, with the size when there is one, and forgets it at the end', () => {
    const progress = new DownloadProgress();
    const file = progress.start('alice', 'us-east-1', 'aaaaaaaa', 300);
    const folder = progress.start('alice', 'us-east-1', 'bbbbbbbb', undefined);
    file.add(100);
    file.add(50);
    folder.add(7);
    expect(progress.get('alice', 'us-east-1', 'aaaaaaaa')).toEqual({ bytes: 150, size: 300 });
    expect(progress.get('alice', 'us-east-1', 'bbbbbbbb')).toEqual({ bytes: 7 });
    file.end();
    expect(progress.get('alice', 'us-east-1', 'aaaaaaaa')).toBeUndefined();
    folder.end();
    expect(progress.size).toBe(0);
  });

  it('answers only the user and region that started it', () => {
    const progress = new DownloadProgress();
    progress.start('alice', 'us-east-1', 'aaaaaaaa', 10).add(5);
    expect(progress.get('bob', 'us-east-1', 'aaaaaaaa')).toBeUndefined();
    expect(progress.get('alice', 'eu-west-1', 'aaaaaaaa')).toBeUndefined();
    expect(progress.get('alice', 'us-east-1', 'aaaaaaaa')).toEqual({ bytes: 5, size: 10 });
  });

  it('a newer copy under the same id keeps its entry when the older one ends', () => {
    const progress = new DownloadProgress();
    const older = progress.start('alice', 'us-east-1', 'aaaaaaaa', 10);
    const newer = progress.start('alice', 'us-east-1', 'aaaaaaaa', 20);
    newer.add(3);
    older.end();
    expect(progress.get('alice', 'us-east-1', 'aaaaaaaa')).toEqual({ bytes: 3, size: 20 });
  });
});
