// Strings of service mode, calibration and diagnostics.
export default {
  en: {
    'service.banner': 'In service: {park} — {by} since {since} ({reason})',
  },
  de: {
    'service.banner': 'Im Service: {park} — {by} seit {since} ({reason})',
  },
  pl: {
    'service.banner': 'W serwisie: {park} — {by} od {since} ({reason})',
  },
}
