/**
 * Job following as a lit reactive controller: submits an image to the server, follows the job's
 * Server-Sent Events, and keeps the list of jobs and the one followed; every event re-renders the
 * host element (`<cellpose-panel>`).
 * @module
 */
import type { ReactiveController, ReactiveControllerHost } from "lit";
import type { JobStatus, ServerApi } from "./api.ts";

/** The jobs of one panel, and the one it follows. */
export class JobFollower implements ReactiveController {
  /** the job followed (the last one submitted) */
  current: JobStatus | null = null;
  /** the last 20 jobs, newest first */
  jobs: JobStatus[] = [];

  /** `api` gives the client for the host's current server and token. */
  constructor(
    private readonly host: ReactiveControllerHost,
    private readonly api: () => ServerApi,
  ) {
    host.addController(this);
  }

  /** Nothing to set up: a job is followed from {@link run} until it ends. */
  hostConnected(): void {}

  /** Submits `blob` with `params` and follows the job until it ends; returns both. */
  async run(
    blob: Blob,
    name: string,
    params: Record<string, number | boolean>,
  ): Promise<{ job: JobStatus; end: JobStatus }> {
    const job = await this.api().submit(blob, name, params);
    this.current = job;
    this.jobs = [job, ...this.jobs].slice(0, 20);
    this.host.requestUpdate();
    const end = await this.api().follow(job.id, (s) => {
      this.current = { ...this.current!, ...s };
      this.jobs = this.jobs.map((j) => (j.id === s.id ? { ...j, ...s } : j));
      this.host.requestUpdate();
    });
    return { job, end };
  }

  /** Cancels the followed job, if any. */
  async cancel(): Promise<void> {
    if (this.current) await this.api().cancel(this.current.id);
  }
}
