import type { WebhookEvent } from '@kiln/protocol';
import type { WebhookDelivery, WebhookDeliveryState, WebhookDeliverySummary } from './job-store.ts';

/** A `webhook_deliveries` row as both adapters read it. */
export interface DeliveryRow {
  id: string;
  job_id: string;
  job_run: number;
  endpoint: string;
  event: WebhookEvent;
  url: string;
  payload: string;
  state: WebhookDeliveryState;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  last_status: number | null;
  created_at: number;
  delivered_at: number | null;
}

/** A listing row: every column but the payload. */
export type DeliverySummaryRow = Omit<DeliveryRow, 'payload'>;

/** The column list of {@link DeliverySummaryRow}, for SELECTs. */
export const DELIVERY_SUMMARY_COLUMNS =
  'id, job_id, job_run, endpoint, event, url, state, attempts, next_attempt_at, last_error, last_status, created_at, delivered_at';

/** A listing row as a WebhookDeliverySummary. */
export function toDeliverySummary(row: DeliverySummaryRow): WebhookDeliverySummary {
  return {
    id: row.id,
    jobId: row.job_id,
    jobRun: row.job_run,
    endpoint: row.endpoint,
    event: row.event,
    url: row.url,
    state: row.state,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    lastStatus: row.last_status,
    createdAt: row.created_at,
    deliveredAt: row.delivered_at,
  };
}

/** A row as a WebhookDelivery. */
export function toDelivery(row: DeliveryRow): WebhookDelivery {
  return { ...toDeliverySummary(row), payload: row.payload };
}
