/**
 * Cove's Prometheus metrics (`app.metrics`). One registry per app, so tests that build several
 * apps never share a counter; every series carries this process's `instance` label. Services
 * report what happened through the few verbs here; gauges read the current state at scrape time
 * from the sources the services register. Labels are closed sets (regions, directions, reasons,
 * route patterns, store operations): never a user name, id, path or token.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type TransferDirection = 'upload' | 'download';
/** `password`: unknown user, wrong password or disabled (one answer to the client, one here). */
export type SignInFailureReason = 'password' | 'mfa' | 'throttled';
export type StsOutcome = 'ok' | 'error';

/** Counts per region, read when scraped. */
export type RegionCounts = () => ReadonlyMap<string, number>;

export interface MetricsOptions {
  readonly instance: string;
  /** Node.js process metrics (CPU, memory, event loop); they add process-wide observers. */
  readonly processMetrics?: boolean;
}

/** Seconds: store calls are usually sub-millisecond, STS calls tens to thousands of ms. */
const storeBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const stsBuckets = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** An STS error code as a label: SDK codes are short names; anything else is one bucket. */
const stsCodeLabel = (code: string): string => (/^[A-Za-z0-9_.-]{1,64}$/.test(code) ? code : 'other');

export class Metrics {
  readonly registry = new Registry();
  readonly instance: string;
  private readonly terminalSources: RegionCounts[] = [];
  private readonly environmentSources: RegionCounts[] = [];

  private readonly terminalOutputBytes: Counter;
  private readonly terminalInputBytes: Counter;
  private readonly stsCalls: Counter<'outcome'>;
  private readonly stsErrors: Counter<'code'>;
  private readonly stsDuration: Histogram;
  private readonly fileTransfers: Counter<'direction'>;
  private readonly fileTransferBytes: Counter<'direction'>;
  private readonly signInFailures: Counter<'reason'>;
  private readonly storeDuration: Histogram<'operation'>;
  private readonly storeErrors: Counter<'operation'>;
  private readonly httpRequests: Counter<'method' | 'route' | 'status_class'>;

  constructor(options: MetricsOptions) {
    this.instance = options.instance;
    const registers = [this.registry];
    this.registry.setDefaultLabels({ instance: options.instance });
    const sum = (sources: RegionCounts[]) => {
      const totals = new Map<string, number>();
      for (const source of sources)
        for (const [region, n] of source()) totals.set(region, (totals.get(region) ?? 0) + n);
      return totals;
    };
    const terminalSources = this.terminalSources;
    new Gauge({
      name: 'cove_terminals_open',
      help: 'Terminals (shell tabs) this instance holds, attached or in their grace period',
      labelNames: ['region'],
      registers,
      collect() {
        this.reset();
        for (const [region, n] of sum(terminalSources)) this.set({ region }, n);
      },
    });
    const environmentSources = this.environmentSources;
    new Gauge({
      name: 'cove_environments_running',
      help: 'Environments (containers) this instance knows to be running',
      labelNames: ['region'],
      registers,
      collect() {
        this.reset();
        for (const [region, n] of sum(environmentSources)) this.set({ region }, n);
      },
    });
    this.terminalOutputBytes = new Counter({
      name: 'cove_terminal_output_bytes_total',
      help: 'Bytes the shells printed',
      registers,
    });
    this.terminalInputBytes = new Counter({
      name: 'cove_terminal_input_bytes_total',
      help: 'Bytes typed or pasted into the shells',
      registers,
    });
    this.stsCalls = new Counter({
      name: 'cove_sts_calls_total',
      help: 'STS AssumeRole requests (each attempt, retries included) by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.stsErrors = new Counter({
      name: 'cove_sts_errors_total',
      help: 'Failed STS AssumeRole requests by error code (Throttling, AccessDenied, TimeoutError, ...)',
      labelNames: ['code'],
      registers,
    });
    this.stsDuration = new Histogram({
      name: 'cove_sts_call_duration_seconds',
      help: 'Time of one STS AssumeRole request, answered or not',
      buckets: stsBuckets,
      registers,
    });
    this.fileTransfers = new Counter({
      name: 'cove_file_transfers_total',
      help: 'Completed file transfers by direction',
      labelNames: ['direction'],
      registers,
    });
    this.fileTransferBytes = new Counter({
      name: 'cove_file_transfer_bytes_total',
      help: 'Bytes of completed file transfers by direction',
      labelNames: ['direction'],
      registers,
    });
    this.signInFailures = new Counter({
      name: 'cove_signin_failures_total',
      help: 'Refused sign-ins: password (unknown user, wrong password, disabled), mfa (wrong, replayed or locked out code), throttled',
      labelNames: ['reason'],
      registers,
    });
    this.storeDuration = new Histogram({
      name: 'cove_store_operation_duration_seconds',
      help: 'Time of one store (database) call, by repository.method',
      labelNames: ['operation'],
      buckets: storeBuckets,
      registers,
    });
    this.storeErrors = new Counter({
      name: 'cove_store_operation_errors_total',
      help: 'Store calls that failed, by repository.method',
      labelNames: ['operation'],
      registers,
    });
    this.httpRequests = new Counter({
      name: 'cove_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status class (2xx, 4xx, ...)',
      labelNames: ['method', 'route', 'status_class'],
      registers,
    });
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'cove_' });
  }

  /** Adds a source of open terminals per region (summed over every source). */
  countTerminals(source: RegionCounts): void {
    this.terminalSources.push(source);
  }

  /** Adds a source of running environments per region. */
  countEnvironments(source: RegionCounts): void {
    this.environmentSources.push(source);
  }

  terminalOutput(bytes: number): void {
    this.terminalOutputBytes.inc(bytes);
  }

  terminalInput(bytes: number): void {
    this.terminalInputBytes.inc(bytes);
  }

  /** One STS request ended; `code` is the error code when it failed. */
  stsCall(seconds: number, code?: string): void {
    this.stsDuration.observe(seconds);
    this.stsCalls.inc({ outcome: code === undefined ? 'ok' : 'error' });
    if (code !== undefined) this.stsErrors.inc({ code: stsCodeLabel(code) });
  }

  fileTransferred(direction: TransferDirection, bytes: number): void {
    this.fileTransfers.inc({ direction });
    this.fileTransferBytes.inc({ direction }, bytes);
  }

  signInFailed(reason: SignInFailureReason): void {
    this.signInFailures.inc({ reason });
  }

  /** One store call ended. `operation` is `repository.method` (e.g. `users.get`). */
  storeCall(operation: string, seconds: number, failed: boolean): void {
    this.storeDuration.observe({ operation }, seconds);
    if (failed) this.storeErrors.inc({ operation });
  }

  httpRequest(method: string, route: string, statusCode: number): void {
    this.httpRequests.inc({ method, route, status_class: `${Math.floor(statusCode / 100)}xx` });
  }

  /** The Prometheus text exposition. */
  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
