// The API key and chosen project of this browser tab: sessionStorage, so they end with the tab.
const KEY = "ptw.key";
const PROJECT = "ptw.project";

export function storedKey() {
  return sessionStorage.getItem(KEY);
}

export function storeKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export function storedProject() {
  return sessionStorage.getItem(PROJECT);
}

export function storeProject(id) {
  sessionStorage.setItem(PROJECT, id);
}

export function forget() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(PROJECT);
}
