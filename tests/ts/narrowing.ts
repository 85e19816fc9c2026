// Type tests: where a field's presence depends on another field, the bindings are a
// discriminated union and TypeScript narrows them without casts. Only type-checked
// (tsc --noEmit, from .ci/check-generated.sh). Each @ts-expect-error line must stay an error:
// if a union were lost (a field optional in every variant again), the line would compile and
// tsc would fail on the unused directive; each annotated assignment after a narrowing fails
// to compile if the narrowing stops working.

import type {
  ClientCapabilities,
  InitializeResponse,
  JsonRpcErrorData,
  McpAccountStatus,
  McpServerStatus,
  OauthChallengeResponse,
  OauthLoginCompletedNotification,
  OauthTokenParams,
  OauthLoginResponse,
} from "../../bindings/src/generated/index.ts";
import { PROTOCOL_VERSION } from "../../bindings/src/generated/methods.ts";

// ----------------------------------------------------------------- the login's answer

export function byFlow(answer: OauthLoginResponse): string {
  // @ts-expect-error a login without a browser has no URL: narrow on `flow` first
  const unchecked: string = answer.authorizationUrl;
  void unchecked;
  switch (answer.flow) {
    case "browser": {
      const url: string = answer.authorizationUrl;
      const redirect: string = answer.redirectUri;
      const grant: "authorizationCode" | "enterpriseManaged" = answer.grant;
      return `${grant}: open ${url}, back at ${redirect}`;
    }
    case "direct": {
      // @ts-expect-error no browser, no URL
      void answer.authorizationUrl;
      const grant: "clientCredentials" | "jwtBearer" | "enterpriseManaged" | "sharedLogin" =
        answer.grant;
      return `${grant}: tokens stored`;
    }
    case "device": {
      // @ts-expect-error a device login has no authorization URL: the user types a code
      void answer.authorizationUrl;
      const grant: "deviceCode" = answer.grant;
      const uri: string = answer.verificationUri;
      const code: string = answer.userCode;
      const link: string | undefined = answer.verificationUriComplete;
      const expiresAt: number = answer.expiresAt;
      const interval: number = answer.interval;
      return `${grant}: enter ${code} at ${link ?? uri} by ${expiresAt}, polled every ${interval} s`;
    }
    default: {
      // Every flow is handled: a new one fails to compile here until it is.
      const unhandled: never = answer;
      return unhandled;
    }
  }
}

export function byGrant(answer: OauthLoginResponse): string | undefined {
  // `authorizationCode` belongs to the browser flow only, so the grant narrows too.
  if (answer.grant === "authorizationCode") {
    const url: string = answer.authorizationUrl;
    return url;
  }
  if (answer.grant === "deviceCode") {
    // A device login's answer is not a browser login's: a code and a URL to show instead.
    // @ts-expect-error no authorization URL
    void answer.authorizationUrl;
    return answer.verificationUri;
  }
  if (answer.grant === "clientCredentials" || answer.grant === "jwtBearer") {
    // @ts-expect-error a machine grant never has a URL
    void answer.authorizationUrl;
    return undefined;
  }
  // `enterpriseManaged` comes both ways: only `flow` tells.
  // @ts-expect-error not narrowed yet
  void answer.authorizationUrl;
  return answer.flow === "browser" ? answer.authorizationUrl : undefined;
}

// @ts-expect-error a browser login always carries its URL
export const missingUrl: OauthLoginResponse = { flow: "browser", grant: "authorizationCode", redirectUri: "x" };
// @ts-expect-error a configured grant is never a browser login
export const wrongGrant: OauthLoginResponse = { flow: "browser", grant: "clientCredentials", authorizationUrl: "x", redirectUri: "x" };
export const direct: OauthLoginResponse = { flow: "direct", grant: "jwtBearer" };
export const device: OauthLoginResponse = { flow: "device", grant: "deviceCode", verificationUri: "https://as.example/device", userCode: "WDJB-MJHT", expiresAt: 1, interval: 5 };
// @ts-expect-error a device login always carries its code
export const deviceWithoutCode: OauthLoginResponse = { flow: "device", grant: "deviceCode", verificationUri: "x", expiresAt: 1, interval: 5 };

// ----------------------------------------------------------------- the challenge's answer

export function byAction(answer: OauthChallengeResponse): string {
  // @ts-expect-error only some answers carry a token
  void answer.accessToken;
  switch (answer.action) {
    case "token": {
      const token: string = answer.accessToken;
      const type: string = answer.tokenType;
      return `${type} ${token}`;
    }
    case "dpopProof": {
      const proof: string = answer.proof;
      return proof;
    }
    case "login": {
      const url: string = answer.authorizationUrl;
      const scopes: string[] = answer.scopes;
      // @ts-expect-error a step-up has no token yet
      void answer.accessToken;
      return `${url} ${scopes.join(" ")}`;
    }
    case "reauthenticationRequired": {
      const reason: string = answer.reason;
      return reason;
    }
    default: {
      const unhandled: never = answer;
      return unhandled;
    }
  }
}

// ----------------------------------------------------------------- versions and DPoP

export const capable: ClientCapabilities = { dpop: true, optOutNotificationMethods: null };
// @ts-expect-error the capability is a boolean
export const notBoolean: ClientCapabilities = { dpop: "yes" };

export function sameMajor(init: InitializeResponse): boolean {
  const version: string = init.protocolVersion;
  const literal: string = PROTOCOL_VERSION;
  return version.split(".")[0] === literal.split(".")[0];
}

export function instead(data: JsonRpcErrorData | undefined): string | undefined {
  if (data?.kind === "dpopRequired") {
    // The method to call instead is one of the daemon's methods.
    const method: "mcpServer/oauth/dpopProof" | undefined = data.useMethod === "mcpServer/oauth/dpopProof" ? data.useMethod : undefined;
    return method;
  }
  return undefined;
}

// ----------------------------------------------------------------- accounts

// Every account request may name one (or leave it out, or pass null).
export const named: OauthTokenParams = { name: "linear", account: "bob@example.com" };
export const lastUsed: OauthTokenParams = { name: "linear", account: null };
// @ts-expect-error a label is a string
export const notALabel: OauthTokenParams = { name: "linear", account: 7 };

export function accountsOf(status: McpServerStatus): string[] {
  // `accounts` is absent when the server has none: handle that before using it.
  // @ts-expect-error possibly undefined
  void status.accounts.length;
  const list: McpAccountStatus[] = status.accounts ?? [];
  // An account logged in to without a label has none: `account` is optional.
  return list.map((a) => `${a.account ?? "(no label)"}${a.current ? " *" : ""}: ${a.authStatus}`);
}

export function whoLoggedIn(done: OauthLoginCompletedNotification): string | undefined {
  const account: string | undefined = done.account;
  return account;
}
