// Package account is the seed's bank account: open it, deposit into it,
// withdraw from it without going below zero. Amounts are integer minor units
// (cents).
package account
