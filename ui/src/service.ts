// Service mode banners: which visible parks are in service, from the snapshot's `service` list
// and the `service` pushes (a client that missed a push gets the list again with the next
// snapshot).
import { reactive } from 'vue'
import type { ServiceBanner } from './protocol'
import { onPush, type PushMsg } from './pushes'

/** Banners by park id. */
export const banners = reactive(new Map<string, ServiceBanner>())

/** Replaces every banner with the snapshot's list. */
export function applyServiceList(list: ServiceBanner[] | undefined): void {
  banners.clear()
  for (const b of list ?? []) if (b.active) banners.set(b.park, b)
}

/** Applies one `service` push. */
export function applyServicePush(b: ServiceBanner): void {
  if (b.active) banners.set(b.park, b)
  else banners.delete(b.park)
}

onPush<PushMsg & ServiceBanner>('service', (m) => applyServicePush(m))
