/*!
 * quanyu.js: 全域 Quanyu web tracker, an analytics.js-compatible subset.
 * 全域网站采集脚本：analytics.js 兼容的子集。
 *
 * Served by Quanyu at /js/quanyu.js and /analytics.js/v1/<writeKey>/analytics.min.js.
 * Docs: docs/connectors-web-tracker.md. Hand-written ES2017, no build step.
 */
(function (window, document) {
  'use strict';

  var VERSION = '0.1.0';
  var ANON_KEY = 'ajs_anonymous_id';
  var USER_KEY = 'ajs_user_id';
  var YEAR_SECONDS = 365 * 24 * 60 * 60;
  // sendBeacon and keepalive fetch may have at most 64 KiB in flight: keep each request under it.
  var MAX_REQUEST_BYTES = 60 * 1024;
  // Messages kept while the server is unreachable; the oldest go first past this.
  var MAX_QUEUE = 1000;
  // utm_* parameter → context.campaign key, as Segment names them (utm_campaign is `name`).
  var UTM = { utm_source: 'source', utm_medium: 'medium', utm_campaign: 'name', utm_term: 'term', utm_content: 'content' };
  // Ad click ids copied into properties: identity resolution links them to the visitor
  // (src/quanyu/identity/extract.py, _CLICK_ID_PATHS).
  var CLICK_IDS = ['bd_vid', 'gdt_vid', 'qz_gdt', 'clickid', 'gclid', 'fbclid', 'ttclid', 'msclkid'];

  var existing = window.analytics;
  if (existing && existing.initialized) return; // the script was included twice: keep the first

  // Where this script came from: the default API host, and the write key of a Segment-style URL.
  var script = document.currentScript;
  var scriptUrl = script && script.src ? new URL(script.src, window.location.href) : null;

  var state = {
    writeKey: null,
    host: '',
    flushAt: 20,
    flushInterval: 2000,
    cookieDomain: '',
    anonymousId: null,
    userId: null,
    queue: [],
    pending: [], // calls made before load(), replayed by it
    ready: [],
    timer: null,
    failures: 0,
    debug: false,
  };

  function log() {
    if (state.debug && window.console) window.console.log.apply(window.console, ['[quanyu.js]'].concat(Array.from(arguments)));
  }

  function warn(message) {
    if (window.console) window.console.warn('[quanyu.js] ' + message);
  }

  // ---- ids 标识 -------------------------------------------------------------------------------

  function uuid() {
    var c = window.crypto;
    // randomUUID exists only in secure contexts (https, localhost); getRandomValues everywhere.
    if (c && typeof c.randomUUID === 'function') return c.randomUUID();
    var b = new Uint8Array(16);
    if (c && typeof c.getRandomValues === 'function') c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    var h = Array.from(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  // ---- cookies and storage ---------------------------------------------------------------------

  function readCookie(name) {
    var prefix = name + '=';
    var parts = document.cookie ? document.cookie.split(';') : [];
    for (var i = 0; i < parts.length; i++) {
      var part = parts[i].trim();
      if (part.indexOf(prefix) !== 0) continue;
      var value;
      try {
        value = decodeURIComponent(part.slice(prefix.length));
      } catch (e) {
        return null;
      }
      // analytics.js 1.x stored JSON strings ("\"id\""): read those too, so ids survive a switch.
      if (value.length > 1 && value[0] === '"' && value[value.length - 1] === '"') value = value.slice(1, -1);
      return value || null;
    }
    return null;
  }

  function writeCookie(name, value, maxAge) {
    var cookie = name + '=' + encodeURIComponent(value) + '; path=/; max-age=' + maxAge + '; SameSite=Lax';
    if (state.cookieDomain) cookie += '; domain=' + state.cookieDomain;
    if (window.location.protocol === 'https:') cookie += '; Secure';
    document.cookie = cookie;
  }

  // The widest domain that takes a cookie (example.com for www.example.com; the browser refuses
  // public suffixes such as com.cn), as analytics.js does, so sub-sites share one anonymous id.
  // None on localhost and IP addresses, where the cookie stays on the host.
  function topDomain(hostname) {
    if (hostname.indexOf('.') < 0 || /^[\d.]+$/.test(hostname) || hostname.indexOf(':') >= 0) return '';
    var labels = hostname.split('.');
    var probe = '__quanyu_domain_probe';
    for (var i = labels.length - 2; i >= 0; i--) {
      var domain = labels.slice(i).join('.');
      document.cookie = probe + '=1; path=/; domain=' + domain;
      if (readCookie(probe)) {
        document.cookie = probe + '=; path=/; max-age=0; domain=' + domain;
        return domain;
      }
    }
    return '';
  }

  function storage(method, key, value) {
    // localStorage mirrors the cookies (Safari caps script-set cookies at 7 days); it can throw
    // (private mode, disabled storage), and then the cookie alone is kept.
    try {
      return window.localStorage[method](key, value);
    } catch (e) {
      return null;
    }
  }

  function remember(key, value) {
    if (value) {
      writeCookie(key, value, YEAR_SECONDS);
      storage('setItem', key, value);
    } else {
      writeCookie(key, '', 0);
      storage('removeItem', key);
    }
  }

  function recall(key) {
    return readCookie(key) || storage('getItem', key) || null;
  }

  // ---- what every message carries 每条消息的上下文 -----------------------------------------------

  function pageInfo() {
    var loc = window.location;
    return {
      path: loc.pathname,
      referrer: document.referrer,
      search: loc.search,
      title: document.title,
      url: loc.href.split('#')[0],
    };
  }

  function campaign(search) {
    var params = new URLSearchParams(search);
    var out = {};
    Object.keys(UTM).forEach(function (key) {
      var value = params.get(key);
      if (value) out[UTM[key]] = value;
    });
    return out;
  }

  function clickIds(search) {
    var params = new URLSearchParams(search);
    var out = {};
    CLICK_IDS.forEach(function (key) {
      var value = params.get(key);
      if (value) out[key] = value;
    });
    return out;
  }

  function timezone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (e) {
      return undefined;
    }
  }

  function message(type, fields, options) {
    options = options || {};
    var search = window.location.search;
    var context = {
      library: { name: 'quanyu.js', version: VERSION },
      locale: navigator.language,
      userAgent: navigator.userAgent,
      timezone: timezone(),
      page: pageInfo(),
    };
    var utm = campaign(search);
    if (Object.keys(utm).length) context.campaign = utm;
    Object.assign(context, options.context || {});
    var msg = Object.assign(
      {
        type: type,
        messageId: uuid(),
        anonymousId: options.anonymousId || state.anonymousId,
        timestamp: (options.timestamp ? new Date(options.timestamp) : new Date()).toISOString(),
        context: context,
        integrations: options.integrations || {},
      },
      fields
    );
    var userId = fields.userId !== undefined ? fields.userId : state.userId;
    if (userId) msg.userId = String(userId);
    else delete msg.userId;
    if (type === 'track' || type === 'page') {
      // Explicit properties win over the URL's click ids.
      msg.properties = Object.assign(clickIds(search), msg.properties || {});
    }
    return msg;
  }

  function enqueue(msg, callback) {
    log('queued', msg);
    state.queue.push(msg);
    if (state.queue.length > MAX_QUEUE) state.queue.splice(0, state.queue.length - MAX_QUEUE);
    if (state.queue.length >= state.flushAt) flush();
    else if (!state.timer) state.timer = setTimeout(flush, state.flushInterval);
    if (typeof callback === 'function') setTimeout(callback, 0);
  }

  // ---- delivery 发送 -------------------------------------------------------------------------------

  function byteLength(text) {
    return new TextEncoder().encode(text).length;
  }

  // Batches whose JSON stays under MAX_REQUEST_BYTES (a larger single message goes alone).
  function chunks(messages) {
    var out = [];
    var current = [];
    var size = 0;
    messages.forEach(function (msg) {
      var bytes = byteLength(JSON.stringify(msg)) + 1;
      if (current.length && size + bytes > MAX_REQUEST_BYTES - 200) {
        out.push(current);
        current = [];
        size = 0;
      }
      current.push(msg);
      size += bytes;
    });
    if (current.length) out.push(current);
    return out;
  }

  function send(batch, beacon) {
    var url = state.host + '/v1/batch';
    // The write key travels in the body: sendBeacon cannot set an Authorization header, and a
    // text/plain body keeps the request a CORS "simple request" (no preflight). Quanyu parses
    // the JSON whatever the Content-Type.
    var body = JSON.stringify({ batch: batch, writeKey: state.writeKey, sentAt: new Date().toISOString() });
    var small = byteLength(body) <= MAX_REQUEST_BYTES;
    if (beacon && small && navigator.sendBeacon) {
      try {
        if (navigator.sendBeacon(url, new Blob([body], { type: 'text/plain;charset=UTF-8' }))) {
          log('beacon', batch.length);
          return Promise.resolve();
        }
      } catch (e) {
        // fall through to fetch
      }
    }
    return window
      .fetch(url, {
        method: 'POST',
        body: body,
        headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
        keepalive: small, // outlives the page, like a beacon
        credentials: 'omit',
        mode: 'cors',
      })
      .then(function (res) {
        if (res.status >= 500 || res.status === 429) throw new Error('HTTP ' + res.status);
        // Any other answer is final: a 400 would refuse the same batch again.
        if (!res.ok) warn('batch refused / 批次被拒绝: HTTP ' + res.status);
        state.failures = 0;
        log('sent', batch.length, res.status);
      })
      .catch(function (err) {
        // Back in the queue (the server drops duplicates by messageId), retried with backoff,
        // or sent by the beacon if the page goes away first.
        state.failures += 1;
        log('retry', err);
        state.queue = batch.concat(state.queue).slice(-MAX_QUEUE);
        clearTimeout(state.timer);
        state.timer = setTimeout(flush, Math.min(1000 * Math.pow(2, state.failures), 60000));
      });
  }

  function flush(beacon) {
    clearTimeout(state.timer);
    state.timer = null;
    if (!state.writeKey || !state.queue.length) return Promise.resolve();
    var messages = state.queue.splice(0);
    return Promise.all(chunks(messages).map(function (batch) { return send(batch, beacon === true); })).then(function () {});
  }

  // ---- the public API 公开接口 ----------------------------------------------------------------------

  var analytics = {
    VERSION: VERSION,
    initialized: true,
    invoked: true,
  };

  // Arguments are normalised the way analytics.js does: trailing callbacks and omitted
  // optional arguments are both allowed.
  function split(args) {
    var list = Array.from(args);
    var callback = typeof list[list.length - 1] === 'function' ? list.pop() : null;
    return { list: list, callback: callback };
  }

  function isObject(value) {
    return value !== null && typeof value === 'object' && !Array.isArray(value);
  }

  var methods = {
    // page([category], [name], [properties], [options], [callback])
    page: function () {
      var a = split(arguments);
      var strings = [];
      while (a.list.length && strings.length < 2 && (typeof a.list[0] === 'string' || a.list[0] == null)) strings.push(a.list.shift());
      var category = null;
      var name = null;
      if (strings.length === 2 && strings[1] != null) {
        category = strings[0];
        name = strings[1];
      } else {
        name = strings[0] || null;
      }
      var properties = Object.assign(pageInfo(), isObject(a.list[0]) ? a.list[0] : {});
      if (name) properties.name = name;
      if (category) properties.category = category;
      var fields = { properties: properties };
      if (name) fields.name = name;
      if (category) fields.category = category;
      enqueue(message('page', fields, a.list[1]), a.callback);
    },

    // track(event, [properties], [options], [callback])
    track: function (event) {
      var a = split(Array.prototype.slice.call(arguments, 1));
      if (typeof event !== 'string' || !event) {
        warn('track() needs an event name / track() 需要事件名');
        return;
      }
      enqueue(message('track', { event: event, properties: isObject(a.list[0]) ? a.list[0] : {} }, a.list[1]), a.callback);
    },

    // identify([userId], [traits], [options], [callback])
    identify: function () {
      var a = split(arguments);
      var userId = typeof a.list[0] === 'string' || typeof a.list[0] === 'number' ? String(a.list.shift()) : null;
      if (a.list[0] == null && a.list.length) a.list.shift(); // identify(null, traits)
      if (userId) {
        state.userId = userId;
        remember(USER_KEY, userId);
      }
      var traits = isObject(a.list[0]) ? a.list[0] : {};
      enqueue(message('identify', { traits: traits }, a.list[1]), a.callback);
    },

    // alias(userId, [previousId], [options], [callback])
    alias: function (userId) {
      var a = split(Array.prototype.slice.call(arguments, 1));
      var previousId = typeof a.list[0] === 'string' ? a.list.shift() : state.userId || state.anonymousId;
      if (a.list[0] == null && a.list.length) a.list.shift();
      enqueue(message('alias', { userId: String(userId), previousId: previousId }, a.list[0]), a.callback);
    },

    // group(groupId, [traits], [options], [callback])
    group: function (groupId) {
      var a = split(Array.prototype.slice.call(arguments, 1));
      enqueue(message('group', { groupId: String(groupId), traits: isObject(a.list[0]) ? a.list[0] : {} }, a.list[1]), a.callback);
    },

    // Forget the visitor (log out): a new anonymous id, no user id.
    reset: function () {
      state.userId = null;
      remember(USER_KEY, null);
      state.anonymousId = uuid();
      remember(ANON_KEY, state.anonymousId);
    },

    setAnonymousId: function (id) {
      if (!id) return;
      state.anonymousId = String(id);
      remember(ANON_KEY, state.anonymousId);
    },
  };

  // Calls before load() wait in `pending` and run when it is called.
  Object.keys(methods).forEach(function (name) {
    analytics[name] = function () {
      if (state.writeKey) methods[name].apply(null, arguments);
      else state.pending.push([name, Array.from(arguments)]);
      return analytics;
    };
  });

  // load(writeKey, {host, flushAt, flushInterval, cookieDomain})
  analytics.load = function (writeKey, options) {
    if (state.writeKey) return analytics;
    if (!writeKey) {
      warn('load() needs a write key / load() 需要写入密钥');
      return analytics;
    }
    options = options || {};
    var host = options.host || (scriptUrl ? scriptUrl.origin : window.location.origin);
    if (!/^https?:\/\//.test(host)) host = 'https://' + host;
    state.host = host.replace(/\/+$/, '');
    if (options.flushAt > 0) state.flushAt = options.flushAt;
    if (options.flushInterval > 0) state.flushInterval = options.flushInterval;
    state.cookieDomain = typeof options.cookieDomain === 'string' ? options.cookieDomain : topDomain(window.location.hostname);
    state.anonymousId = recall(ANON_KEY) || uuid();
    remember(ANON_KEY, state.anonymousId); // written on every visit: one year from the last one
    state.userId = recall(USER_KEY);
    state.writeKey = String(writeKey);
    log('loaded', state.host);
    var pending = state.pending.splice(0);
    pending.forEach(function (call) { methods[call[0]].apply(null, call[1]); });
    state.ready.splice(0).forEach(function (fn) { setTimeout(fn, 0); });
    return analytics;
  };
  analytics.initialize = analytics.load;

  analytics.ready = function (fn) {
    if (typeof fn !== 'function') return analytics;
    if (state.writeKey) setTimeout(fn, 0);
    else state.ready.push(fn);
    return analytics;
  };

  // Send what is queued now; resolves when the requests have been answered.
  analytics.flush = function () {
    return flush(false);
  };

  analytics.user = function () {
    return {
      id: function () { return state.userId; },
      anonymousId: function () { return state.anonymousId; },
    };
  };

  analytics.debug = function (on) {
    state.debug = on !== false;
    return analytics;
  };

  // Array-style calls, as the stub queue records them: analytics.push(['track', 'Signed Up']).
  analytics.push = function (call) {
    var args = Array.from(call || []);
    var name = args.shift();
    if (typeof analytics[name] === 'function' && name !== 'push') analytics[name].apply(null, args);
    else warn('unsupported method / 不支持的方法: ' + name);
    return analytics;
  };

  // The page goes to the background or away: send the queue with sendBeacon, which the browser
  // delivers even after the page is gone (pagehide also covers the back/forward cache).
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'hidden') flush(true);
  });
  window.addEventListener('pagehide', function () { flush(true); });

  // ---- take over from the snippet's stub 接管预加载队列 -------------------------------------------

  window.analytics = analytics;
  var writeKey = null;
  var loadOptions = null;
  if (existing) {
    writeKey = existing._writeKey || null;
    loadOptions = existing._loadOptions || null;
  }
  if (!writeKey && scriptUrl) {
    // A Segment-style snippet loads /analytics.js/v1/<writeKey>/analytics.min.js.
    var match = /\/analytics\.js\/v1\/([^/]+)\/analytics(?:\.min)?\.js$/.exec(scriptUrl.pathname);
    if (match) writeKey = decodeURIComponent(match[1]);
  }
  if (writeKey) analytics.load(writeKey, loadOptions);
  if (Array.isArray(existing)) existing.forEach(analytics.push);
})(window, document);
